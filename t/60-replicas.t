#!/usr/bin/env perl
# Reads on a replicated topology (docs/scaling.md): lag-tolerant reads go
# to the replica while it is in service, leave it when it is stopped and
# when it lags (its SQL thread stopped while writes go on), and come back
# by themselves; a client's own write is visible to its very next read in
# every phase; /readyz stays 200 and says the replica's state; nothing
# fails meanwhile.
# fronts: nginx only — the topology is the point, not the front
#
# Which database answered is told by a marker: the replica alone holds
# another name for one market (written there as root, past read_only),
# so a read of that name says where it went.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Markets::Load;
use Markets::Test;
use Test::More;
use Time::HiRes qw(time);
Markets::Test::fronts_only(['nginx'], 'the topology is the point, not the front');

my $t = Markets::Test->new(topology => 'replicated',
	env => { MARKETS_WORKERS => 2, MARKETS_RATE_LIMIT => '1000000/60', MARKETS_REPLICA_MAX_LAG => '2s' });
my $root = $t->root;
my $json = JSON::PP->new->utf8->canonical;

sub post_json {
	my ($path, $sub, $body) = @_;
	return $t->request('POST', $path, { headers => { %{ $t->bearer(sub => $sub) },
		'Content-Type' => 'application/json' }, content => $json->encode($body) });
}

# The replica has applied everything the primary has committed.
sub caught_up {
	my ($pos) = map { $_->[0] } $t->sql('SELECT @@gtid_binlog_pos');
	my ($r) = map { $_->[0] } $t->sql_at('mysql-replica', "SELECT MASTER_GTID_WAIT('$pos', 30)");
	return defined $r && $r eq '0';
}

# The marker market, created by user 303.
my $r = post_json('/api/markets', 303, { name => 'Marker on the primary', description => 'where reads go' });
is($r->{status}, 201, 'the marker market is created') or diag($r->{content});
my $marker = $r->{json}{data}{id};
ok(caught_up(), 'the replica has the marker');
$t->sql_at('mysql-replica', "UPDATE markets SET name = 'Marker on the replica' WHERE id = $marker");

# Where a list read by this client went: 'replica' or 'primary'.
sub read_source {
	my (%who) = @_;
	my $r = $t->get('/api/markets?creator_id=303&fields=name&limit=1',
		{ headers => $who{sub} ? $t->bearer(sub => $who{sub}) : {} });
	return 'error ' . $r->{status} unless $r->{status} == 200 && $r->{json}{data}[0];
	return $r->{json}{data}[0]{name} eq 'Marker on the replica' ? 'replica' : 'primary';
}

# How long a transition took (a figure for docs/scaling.md, no assertion).
my %took;
sub timed {
	my ($name, $secs, $cond) = @_;
	my $start = time;
	my $ok = $t->wait_until($secs, $cond);
	$took{$name} = sprintf '%.1f s', time - $start;
	return $ok;
}

# Every one of 12 reads (so every worker of both instances, in all
# likelihood) went to $want.
sub all_reads_from {
	my ($want, %who) = @_;
	for (1 .. 12) { return 0 unless read_source(%who) eq $want }
	return 1;
}

# The replica's state in a /readyz answer (and that it is a 200).
my @readyz_not_200;
sub replica_state {
	my $r = $t->get('/readyz');
	push @readyz_not_200, $r->{status} unless $r->{status} == 200;
	return $r->{json}{data}{replicas}[0]{state} // 'none';
}

# A client that just wrote reads what it wrote: its market in the list,
# and its position in the market's positions, at once, every time.
my $own_misses = 0;
my $own_checks = 0;
sub own_writes_visible {
	my ($phase) = @_;
	for my $i (1 .. 4) {
		my $c = post_json('/api/markets', 101, { name => "Own write $phase $i", description => 'read your writes' });
		is($c->{status}, 201, "$phase: user 101's write $i is acknowledged") or next;
		my $id = $c->{json}{data}{id};
		my $l = $t->get('/api/markets?creator_id=101&limit=1', { headers => $t->bearer(sub => 101) });
		$own_checks++;
		$own_misses++ unless $l->{status} == 200 && ($l->{json}{data}[0]{id} // 0) == $id;
		my $b = post_json("/api/markets/$id/positions", 101, { side => 'yes', amount => '5.00' });
		is($b->{status}, 201, "$phase: user 101's buy $i is acknowledged") or next;
		my $p = $t->get("/api/markets/$id/positions?limit=1", { headers => $t->bearer(sub => 101) });
		$own_checks++;
		$own_misses++ unless $p->{status} == 200 && ($p->{json}{data}[0]{id} // 0) == $b->{json}{data}{id};
		# Within its window its reads stay on the primary.
		is(read_source(sub => 101), 'primary', "$phase: user 101's next read goes to the primary");
	}
}

my $load = Markets::Load->start(port => $t->port, connections => 4, status_file => "$root/load.status",
	requests => [
		{ method => 'GET', path => '/api/markets?limit=5' },
		{ method => 'GET', path => "/api/markets/$marker?fields=name" },
		{ method => 'GET', path => "/api/markets/$marker/positions" },
		{ method => 'GET', path => '/api/markets/search?q=marker' },
	]);

# In service: anonymous readers and authenticated ones who did not write.
ok($t->wait_until(20, sub { replica_state() eq 'ok' && all_reads_from('replica') }),
	'healthy: anonymous reads go to the replica');
ok(all_reads_from('replica', sub => 202), "healthy: a reader who did not write reads the replica");
like($t->get('/metrics')->{content}, qr/^markets_db_replica_in_service\{replica="unix:[^"]*mysql-replica\.sock"\} 1$/m,
	'healthy: /metrics says the replica is in service');
own_writes_visible('healthy');

# Stopped: reads leave it at once (a failed read falls back to the
# primary), /readyz says it is down and stays 200.
my $replica_pid = $t->pid_of('mysqld-replica');
kill 'KILL', $replica_pid;
ok(timed('killed, reads on the primary', 20, sub { all_reads_from('primary') }), 'stopped: reads go to the primary');
ok(timed('killed, /readyz says down', 20, sub { replica_state() eq 'down' }), 'stopped: /readyz says the replica is down');
own_writes_visible('stopped');

# Back: started again, it is checked back into service by itself.
ok($t->stack('start', $root, '--services', 'mariadb', '--topology', 'replicated'), 'the replica starts again');
ok(timed('restarted, reads on the replica', 30, sub { all_reads_from('replica') }), 'restarted: reads go to the replica again');
own_writes_visible('restarted');

# Lagging: its SQL thread stopped while writes go on.
$t->sql_at('mysql-replica', 'STOP SLAVE SQL_THREAD');
my $newest;
for my $i (1 .. 5) {
	my $c = post_json('/api/markets', 404, { name => "Written while the replica lags $i", description => 'lag' });
	is($c->{status}, 201, "lagging: user 404's write $i is acknowledged");
	$newest = $c->{json}{data}{id};
}
ok(timed('SQL thread stopped, reads on the primary', 20, sub { all_reads_from('primary') }), 'lagging: reads leave the replica');
ok($t->wait_until(20, sub { replica_state() eq 'lagging' }), 'lagging: /readyz says the replica lags');
my $l = $t->get('/api/markets?creator_id=404&limit=1');
is($l->{json}{data}[0]{id}, $newest, "lagging: an anonymous list has the newest write (the primary's)");
own_writes_visible('lagging');
$t->sql_at('mysql-replica', 'START SLAVE SQL_THREAD');
ok(timed('SQL thread started, reads on the replica', 30, sub { all_reads_from('replica') }), 'caught up: reads go to the replica again');
$l = $t->get('/api/markets?creator_id=404&limit=1');
is($l->{json}{data}[0]{id}, $newest, "caught up: the replica has the writes it missed");

my $res = $load->stop;
ok($res->{answers} > 0, "load: $res->{answers} answers");
is($res->{non_2xx}, 0, 'load: no answer other than 2xx through every phase')
	or diag(explain($res->{statuses}), explain($res->{samples}));
is($res->{errors}, 0, 'load: no failed exchange') or diag(explain($res->{error_kinds}));
is("@readyz_not_200", '', '/readyz answered 200 in every phase');
is($own_misses, 0, "a client's own write was visible to its next read ($own_checks reads)");

# Nothing else changed: once caught up, the replica holds what the
# primary holds (the marker's name aside).
ok(caught_up(), 'the replica caught up');
my $digest = 'SELECT COUNT(*), SUM(version), SUM(volume) FROM markets';
is_deeply([$t->sql_at('mysql-replica', $digest)], [$t->sql($digest)], 'the replica holds what the primary holds');

diag("$_: $took{$_}") for sort keys %took;
$t->finish;
done_testing;
