#!/usr/bin/perl
# markets-admin run-jobs --drain, as cron runs it every minute where no
# master runs job runners (mod_fcgid, shared hosting; here job_runners = 0):
# - two drains at once: the second finds the MariaDB named lock
#   'markets.run-jobs' held and exits 0 at once with "another drain holds
#   the lock", having touched no job; the first does every queued index
#   job, exits 0, and a search then finds the new markets;
# - an empty queue: exit 0;
# - --max-time: the job in hand finishes, the unstarted ones go back to
#   the queue, exit 0 with a log line; bad values are usage errors (2);
# - a drain SIGKILLed mid-job: its lock goes with its connection (the
#   next drain runs at once) and its claimed jobs run again once their
#   lease ran out, each effect once.
# A drain's first job is held up, where it needs to be, by a MariaDB
# session holding search_state's row (every stored vector bumps it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(env => { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_JOB_RUNNERS => 0 });
my $root = $t->root;
# Under the mod_fcgid fronts the stack's cron stand-in drains every 5 s:
# this test is that cron, and times its drains itself.
if ($t->mod_fcgid) {
	my $cron = $t->pid_of('cron');
	ok($cron && kill('TERM', $cron), "the stack's cron stand-in stopped (the test runs the drains)");
	$t->wait_until(10, sub { !kill 0, $cron });
}
my $repo = Markets::Test::repo();
my $admin = Markets::Test::build_dir() . '/markets-admin';
my @config = ('--config', "$repo/conf/markets.conf", '--config', "$root/conf/markets.stack.conf",
	'--config', "$root/db.conf");
my $json = JSON::PP->new->utf8;
my %writer = (sub => '4301', role => 'user', email => 'drain@example.org');

# Starts a drain in the background (a short lease: a killed one's jobs come
# back soon); returns its pid.
sub drain_bg {
	my (@args) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$ENV{MARKETS_JOB_LEASE} = '2s';
		open STDOUT, '>>', "$root/log/drain.out" or POSIX::_exit(120);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(121);
		exec $admin, @config, 'run-jobs', '--drain', @args or POSIX::_exit(122);
	}
	return $pid;
}
# Runs a drain to its end; returns its exit status.
sub drain { my $pid = drain_bg(@_); waitpid $pid, 0; return $? >> 8 }
sub count_jobs { my ($status) = @_; ($t->sql("SELECT COUNT(*) FROM jobs WHERE status = '$status'"))[0][0] }
# The lock is the database's: its name carries an MD5 of the database's.
sub lock_holder { ($t->sql(q{SELECT IFNULL(IS_USED_LOCK(CONCAT('markets.run-jobs:', MD5(DATABASE()))), 0)}))[0][0] }
sub log_count { my ($re) = @_; scalar grep { ($_->{msg} // '') =~ $re } $t->log_lines }
# Holds search_state's row in a session of its own: a drain's first vector
# waits until it is let go (close the handle).
sub hold_search_state {
	my ($secs) = @_;
	open my $locker, '|-', 'mariadb', '--no-defaults', "--socket=$root/run/mysql.sock", '-uroot', 'markets'
		or die "mariadb: $!";
	$locker->autoflush(1);
	print $locker "BEGIN; SELECT seq FROM search_state WHERE id = 1 FOR UPDATE; SELECT SLEEP($secs); COMMIT;\n";
	$t->wait_until(5, sub {
		($t->sql(q{SELECT COUNT(*) FROM information_schema.processlist WHERE INFO LIKE 'SELECT SLEEP(%'}))[0][0] >= 1 })
		or die 'search_state was not held';
	return $locker;
}
# Each create on a connection of its own: the drains below leave the
# client idle for seconds, and Apache closes an idle kept-alive connection
# after its KeepAliveTimeout (5 s); a POST sent just as it does fails
# (599) and, not being idempotent, is not retried by the client.
sub create {
	my ($name) = @_;
	local $t->{http} = HTTP::Tiny->new(timeout => 30, keep_alive => 0, max_redirect => 0);
	my $r = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(%writer) }, 'Content-Type' => 'application/json' },
		content => $json->encode({ name => $name, description => "$name. Resolves on the day.", end_date => '2031-01-01T00:00:00Z' }) });
	is($r->{status}, 201, "create '$name'") or diag($r->{content});
	return $r->{json}{data}{id};
}
sub search_ids {
	my ($q) = @_;
	(my $enc = $q) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
	return [map { $_->{id} } @{ $t->get("/api/markets/search?q=$enc&limit=10")->{json}{data} || [] }];
}

# ---- usage --------------------------------------------------------------------
for my $bad (['--max-time'], ['--max-time', 'abc'], ['--max-time', '-1'], ['--max-time', '86401'], ['--now']) {
	open my $saved, '>&', \*STDERR or die $!;
	open STDERR, '>', '/dev/null' or die $!;
	system($admin, @config, 'run-jobs', '--drain', @$bad);
	open STDERR, '>&', $saved or die $!;
	is($? >> 8, 2, "run-jobs --drain @$bad: a usage error (2)");
}

# ---- an empty queue -------------------------------------------------------------
is(count_jobs('queued'), 0, 'nothing queued at first (no markets)');
is(drain(), 0, 'a drain of an empty queue exits 0');
is(lock_holder(), 0, 'and leaves the lock free');

# ---- two drains at once -----------------------------------------------------------
my @ids = map { create($_) } ('Will the quokka census top 20000?', 'Will the narwhal survey report 3 pods?',
	'Will the axolotl festival sell out?');
is(count_jobs('queued'), 3, 'three index jobs queued (no runner in the master)');
ok(!grep({ my $id = $_; grep { $_ == $id } @{ search_ids('quokka census') } } @ids), 'not searchable yet');

# Another install's drain on the same MariaDB server (shared hosting:
# another database) holds its own lock, which stops nobody here.
open my $other_site, '|-', 'mariadb', '--no-defaults', "--socket=$root/run/mysql.sock", '-uroot', 'mysql'
	or die "mariadb: $!";
$other_site->autoflush(1);
print $other_site "SELECT GET_LOCK(CONCAT('markets.run-jobs:', MD5(DATABASE())), 0); DO SLEEP(12);\n";
ok($t->wait_until(5, sub { ($t->sql(q{SELECT IFNULL(IS_USED_LOCK(CONCAT('markets.run-jobs:', MD5('mysql'))), 0)}))[0][0] > 0 }),
	"another database's drain holds its lock");
my $locker = hold_search_state(8);
my $first = drain_bg();
ok($t->wait_until(10, sub { lock_holder() > 0 && count_jobs('running') > 0 }),
	'the first drain holds the lock and has claimed the jobs (its first one waits on search_state)');
my $before = log_count(qr/another drain holds the lock/);
is(drain(), 0, 'a second drain meanwhile exits 0 (cron mails nothing)');
is(log_count(qr/another drain holds the lock 'markets\.run-jobs/), $before + 1, 'with the log line "another drain holds the lock"');
ok(kill(0, $first), 'while the first one still runs');
is(count_jobs('done'), 0, 'the second one did no job');
close $locker;
waitpid $first, 0;
is($? >> 8, 0, 'the first drain exits 0 when the queue is empty');
is(count_jobs('done'), 3, 'it did the three jobs');
is(count_jobs('queued') + count_jobs('running') + count_jobs('failed'), 0, 'none left');
is(lock_holder(), 0, 'the lock is free again');
close $other_site; # its session ends once its sleep does
ok($t->wait_until(15, sub { my $got = search_ids('quokka census'); @$got && $got->[0] == $ids[0] }),
	'a search finds the new market after the drain');
ok($t->wait_until(15, sub { my $got = search_ids('axolotl festival'); @$got && $got->[0] == $ids[2] }), 'and the others');

# ---- --max-time ------------------------------------------------------------------------
my @more = map { create("Will batch market $_ close early?") } 1 .. 3;
$locker = hold_search_state(4);
my $bounded = drain_bg('--max-time', '1');
waitpid $bounded, 0;
is($? >> 8, 0, '--max-time 1 with its first job held up 4 s: exit 0');
close $locker;
is(count_jobs('done'), 4, 'the job in hand finished');
is(count_jobs('queued'), 2, 'the unstarted ones went back to the queue');
is(count_jobs('running'), 0, 'none left claimed');
ok(log_count(qr/stopped after --max-time 1 s/) >= 1, 'the log says --max-time stopped it');
is(drain('--max-time', '0'), 0, '--max-time 0 (no bound) drains the rest');
is(count_jobs('done'), 6, 'every job done');

# ---- a drain SIGKILLed mid-job -----------------------------------------------------------
my @last = map { create("Will the kiwi count rise in $_?") } 2031 .. 2032;
$locker = hold_search_state(8);
my $victim = drain_bg();
ok($t->wait_until(10, sub { lock_holder() > 0 && count_jobs('running') == 2 }), 'a drain claimed both jobs');
kill 'KILL', $victim;
waitpid $victim, 0;
close $locker;
ok($t->wait_until(10, sub { lock_holder() == 0 }), 'its lock went with its connection');
is(count_jobs('running'), 2, 'its claimed jobs stay claimed until their lease runs out');
ok($t->wait_until(30, sub { drain() == 0 && count_jobs('done') == 8 }), 'later drains run them once the lease ran out');
is_deeply([$t->sql("SELECT COUNT(*) FROM market_embeddings WHERE market_id IN ($last[0], $last[1]) AND vector IS NOT NULL")],
	[[2]], 'one vector each');
is(count_jobs('dead') + count_jobs('failed'), 0, 'no job failed');

$t->finish;
done_testing;
