/*
 * MariaDB replicas (store layer): where reads that tolerate lag go.
 * db_replicas lists the replicas (unix:/path or host:port, each with the
 * primary's account, database and TLS settings); reads() and
 * background_reads() are routed handles (mk_db_routed) on the primary's
 * connection whose SELECTs outside a transaction go to a replica in
 * service, in turn, and to the primary when none is, when the request
 * is pinned to the primary (its client's read-your-writes window, see
 * docs/scaling.md) or when the replica chosen does not answer. Writes
 * and transactions on them run on the primary, as on any handle.
 *
 * Health is the worker's own: mk_replicas_tick(), on the worker's
 * one-second tick, asks each replica SHOW SLAVE STATUS (the account needs
 * SLAVE MONITOR there). A replica is in service while it answers, its
 * SQL thread runs and Seconds_Behind_Master is at most replica_max_lag.
 * One whose lag is unknown (its IO thread is not connected: the primary
 * is gone) is used only while the primary is down too, as the freshest
 * copy there is; while the primary is down, pinned reads go to a replica
 * too, since the primary cannot serve them. A replica that fails a read is out
 * at once; checks bring it back. Requests never wait on a check.
 *
 * Worker-lifetime, made after fork, not thread-safe. The replicas'
 * handles are owned here; the primary is the caller's and must outlive
 * this.
 */
#ifndef MK_REPLICAS_H
#define MK_REPLICAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mk_config;
struct mk_db;
struct mk_replicas;

/* Most entries db_replicas may list. */
#define MK_REPLICAS_MAX 8

/* One replica as the worker last saw it. */
struct mk_replica_state {
	const char *address; /* as db_replicas lists it */
	bool up;             /* answered its last check */
	bool in_service;     /* lag-tolerant reads go there */
	int64_t lag_s;       /* Seconds_Behind_Master; -1: unknown */
};

/*
 * The replicas of config->db_replicas over primary (a request handle)
 * and background (the same connection's background handle). NULL with a
 * reason in err for a bad list or out of memory. Free with
 * mk_replicas_free().
 */
struct mk_replicas *mk_replicas_new(const struct mk_config *config,
    struct mk_db *primary, struct mk_db *background, char *err, size_t errlen);

void mk_replicas_free(struct mk_replicas *replicas);

/* The routed handles: requests' reads, and background work's. */
struct mk_db *mk_replicas_reads(struct mk_replicas *replicas);
struct mk_db *mk_replicas_background_reads(struct mk_replicas *replicas);

/*
 * A routed handle for reads that want the primary (what a cache will
 * store): they go there, and only while it is down to a replica that
 * answers, however far behind; mk_replicas_documents_stale() then says
 * so, until the handle's next SELECT.
 */
struct mk_db *mk_replicas_documents(struct mk_replicas *replicas);
bool mk_replicas_documents_stale(const struct mk_replicas *replicas);

/*
 * Pins the reads of the request being served to the primary (true) or
 * lets them go to replicas (false), until the next call.
 */
void mk_replicas_pin(struct mk_replicas *replicas, bool primary);

/* Checks the replicas due (each about once a second). */
void mk_replicas_tick(struct mk_replicas *replicas, int64_t now_ms);

size_t mk_replicas_count(const struct mk_replicas *replicas);

/* Replica i's state (i < mk_replicas_count()). */
void mk_replicas_state(
    const struct mk_replicas *replicas, size_t i, struct mk_replica_state *out);

#endif
