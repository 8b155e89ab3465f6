#!/usr/bin/env perl
# Costly but valid abuse (issue 10), against a seeded stack through the front:
# - hostile bodies within max_body, however shaped (empty objects,
#   numbers, unknown members, a huge string), one by one and four at once,
#   move a worker's RSS by at most 12 MB per body in flight together, and
#   more of them reuse that memory instead of adding to it;
#   a 400 lists at most 50 details and then "and N more";
# - offset stops at 10,000 with a 400 that names the cursor;
# - count=exact is read from counts kept beside the data, exact through
#   creates, status changes and deletes, without scanning the markets;
# - index jobs: only the creator, a moderator or an admin may queue one,
#   and a job still queued for the market is reused;
# - a buy that would take a volume past DECIMAL(20,2) is a 409 that says so
#   and writes nothing;
# - a FastCGI request that trickles in is closed after request_timeout.
# Under mod_fcgid (Apache starts the app's processes, no master) the RSS
# of one known worker and the app's own FastCGI socket do not exist: the
# bodies are still refused, the memory and trickle checks are skipped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;
use Markets::FastCGI;

# Under ASan, freed memory waits in a quarantine (256 MB by default) before
# it is reused, so RSS would measure the sanitizer, not the app: this
# stack's quarantine is off (the other tests keep it).
$ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'quarantine_size_mb=0';
my $t = Markets::Test->new(seed => 1, env => {
	MARKETS_WORKERS => 1,
	MARKETS_JOB_RUNNERS => 0,  # queued jobs stay queued: the reuse is visible
	MARKETS_RATE_LIMIT => '100000/60',
	MARKETS_REQUEST_TIMEOUT => '2s',
});
my $json = JSON::PP->new->canonical;
my $fcgid = $t->mod_fcgid;
# Under mod_fcgid the cron stand-in drains the job queue every 5 s: stopped
# here, as job_runners = 0 keeps the master's runners from it.
if ($fcgid) {
	my $cron = $t->pid_of('cron');
	kill 'TERM', $cron;
	ok($t->wait_until(10, sub { !kill(0, $cron) || Markets::Test::slurp("/proc/$cron/stat") =~ /^\d+ \(.*\) Z/ }),
		'the cron stand-in is stopped: queued jobs stay queued');
}
my %admin = (sub => '8001', role => 'admin');
my %moderator = (sub => '8002', role => 'moderator');
my %user = (sub => '8003', role => 'user');
sub h { Markets::Test::header(@_) }

sub post_json {
	my ($path, $claims, $body, %headers) = @_;
	return $t->request('POST', $path, { headers => { %{ $t->bearer(%$claims) },
		'Content-Type' => 'application/json', %headers }, content => ref $body ? $json->encode($body) : $body });
}

# ---- bounded memory per request --------------------------------------------------
sub rss_kb {
	my ($pid) = @_;
	my ($kb) = Markets::Test::slurp("/proc/$pid/status") =~ /^VmRSS:\s+(\d+) kB/m;
	return $kb // 0;
}
my ($worker) = $fcgid ? () : $t->worker_pids;
ok($worker, 'one worker') unless $fcgid;
# Warm the worker up (first requests allocate its caches), then measure.
post_json('/api/markets', \%user, '{"name":1}') for 1 .. 3;
$t->get('/api/markets?limit=100&include=creator') for 1 .. 3;
my $rss_before = $fcgid ? 0 : rss_kb($worker);

my $cap = 1024 * 1024;
my %bodies = (
	'349,000 empty objects' => '[' . join(',', ('{}') x 349000) . ']',
	'1 MiB of numbers' => '[' . join(',', ('1') x 500000) . ']',
	'1 MiB of one-character strings' => '[' . join(',', ('"x"') x 250000) . ']',
	'50,000 unknown members' => '{' . join(',', map { sprintf '"k%06d":0', $_ } 1 .. 50000) . '}',
	'nested arrays 32 deep, each with many numbers' => ('[' x 31) . join(',', ('7') x 300000) . (']' x 31),
	'a 1 MiB name' => '{"name":"' . ('n' x ($cap - 20)) . '"}',
);
for my $name (sort keys %bodies) {
	my $body = $bodies{$name};
	substr($body, $cap) = '' if length $body > $cap; # within max_body, whatever the shape
	ok(length $body <= $cap, "$name: within max_body (" . length($body) . ' bytes)');
	my $r = post_json('/api/markets', \%user, $body);
	ok($r->{status} == 400, "$name: 400") or diag(substr($r->{content}, 0, 300));
}
diag("after the six one by one: " . rss_kb($worker) . " kB") unless $fcgid;
# Four at once, as four clients would, six rounds. Four bodies in flight
# together each hold their input and their parse at once, up to 12 MB a
# body; how far they overlap is the scheduler's choice, round by round, so
# the worker's high-water may come in any round (seen: no growth in the
# first, 31 MB in the second, under load, through nginx and Apache alike).
# Reuse, then: no round takes it past 48 MB, and only a round that reaches
# a new overlap (two, three, four bodies at once: three at most) grows it
# by 2 MB or more; a leak would grow it every round.
sub four_at_once {
	my @kids;
	for my $name ((sort keys %bodies)[0 .. 3]) {
		my $pid = fork // die "fork: $!";
		if (!$pid) {
			my $r = post_json('/api/markets', \%user, substr($bodies{$name}, 0, $cap));
			POSIX::_exit($r->{status} == 400 ? 0 : 1);
		}
		push @kids, $pid;
	}
	return scalar grep { waitpid($_, 0); $? != 0 } @kids;
}
my ($failed, @rss) = (0);
for (1 .. 6) {
	$failed += four_at_once();
	push @rss, $fcgid ? 0 : rss_kb($worker);
}
is($failed, 0, 'four hostile bodies at once, six rounds: 24 400s');
SKIP: {
skip 'no one worker to measure: under mod_fcgid Apache spreads requests over the processes it starts', 1 if $fcgid;
my ($high) = sort { $b <=> $a } @rss;
my $grown_mb = ($high - $rss_before) / 1024;
ok($grown_mb < 48, sprintf('the worker grew by %.1f MB at most (RSS %d kB -> %d kB): under 48 MB', $grown_mb, $rss_before, $high));
my @growth = map { ($rss[$_] - ($_ ? $rss[$_ - 1] : $rss_before)) / 1024 } 0 .. $#rss;
diag(sprintf 'worker RSS %d kB before; growth by round: %s MB', $rss_before, join(', ', map { sprintf '%.1f', $_ } @growth));
my $growing = grep { $_ >= 2 } @growth;
ok($growing <= 3, "$growing of 6 rounds grew it by 2 MB or more: at most 3 (new overlaps), not every round (a leak)");
is(($t->worker_pids)[0], $worker, 'the same worker served them all (no restart hid the growth)');
}

my $r = post_json('/api/markets', \%user, $bodies{'349,000 empty objects'});
$t->is_error($r, 400, 'invalid_json', 'too many values');
like($r->{json}{error} // '', qr/256/, 'the message names the cap');

# Within the value cap but full of mistakes: 50 details, then "and N more".
my %unknown = map { (sprintf('x%03d', $_) => 1) } 1 .. 200;
$r = post_json('/api/markets', \%user, { name => 'ok', %unknown });
$t->is_error($r, 400, 'validation_failed', '200 unknown fields') or diag($r->{content});
my $details = $r->{json}{details} || [];
is(scalar @$details, 51, '50 details and a last one');
is_deeply($details->[-1], { field => 'body', message => 'and 150 more' }, 'the last says how many more');
is(scalar(grep { $_->{message} eq 'is not a field of a market' } @$details), 50, 'the first 50 name their field');
$r = post_json('/api/markets', \%user, { name => 'ok', map { (sprintf('y%02d', $_) => 1) } 1 .. 50 });
is(scalar @{ $r->{json}{details} || [] }, 50, 'exactly 50 failures: no summary entry');

# ---- offset stops at 10,000 -----------------------------------------------------------
is($t->get('/api/markets?offset=10000&limit=1')->{status}, 200, 'offset=10000: 200');
$r = $t->get('/api/markets?offset=10001&limit=1');
$t->is_error($r, 400, 'bad_request', 'offset=10001');
like($r->{json}{error} // '', qr/'offset'.*cursor/, 'the message names offset and the cursor');
$t->is_error($t->get('/api/markets/5/positions?offset=1000000'), 400, 'bad_request', 'a deep positions offset');

# ---- count=exact from the counts kept beside the data --------------------------------
sub total { $t->get("/api/markets?count=exact&limit=1&$_[0]")->{json}{meta}{total} }
sub sql_count { ($t->sql("SELECT COUNT(*) FROM markets $_[0]"))[0][0] }
sub rows_read { my $sum = 0; $sum += $_->[1] for $t->sql("SHOW GLOBAL STATUS LIKE 'Handler_read%'"); $sum }
sub counts_agree {
	my ($when) = @_;
	is(total(''), sql_count(''), "$when: count=exact of every market");
	is(total("status=$_"), sql_count("WHERE status = '$_'"), "$when: count=exact of $_ markets") for qw(active closed resolved);
	is(total('creator_id=7'), sql_count('WHERE creator_id = 7'), "$when: count=exact of one creator's markets");
}
counts_agree('seeded');
SKIP: {
	# The server's row count is global: it isolates the counts while one
	# worker serves and idles, not among the processes Apache starts on
	# demand (a new one loads the whole search index as it starts).
	skip 'under mod_fcgid the global row count takes in what the processes Apache starts read meanwhile', 1 if $fcgid;
	my $read_before = rows_read();
	total('') for 1 .. 5;
	my $read = rows_read() - $read_before;
	ok($read < 5 * 200, "five unfiltered counts read $read rows, not five times " . sql_count('') . ' markets');
}
my @made = map { post_json('/api/markets', \%user, { name => "counted $_" })->{json}{data}{id} } 1 .. 3;
is(scalar(grep { $_ } @made), 3, 'three markets created');
$r = $t->request('PATCH', "/api/markets/$made[0]", { headers => { %{ $t->bearer(%user) }, 'Content-Type' => 'application/json' },
	content => '{"status":"resolved"}' });
is($r->{status}, 200, 'one resolved');
is($t->request('DELETE', "/api/markets/$made[1]", { headers => $t->bearer(%admin) })->{status}, 204, 'one deleted');
counts_agree('after creates, a status change and a delete');

# ---- index jobs: who may queue them, and one queued job per market ------------------
my $mine = $made[2];
$t->is_error(post_json("/api/markets/$mine/index", { sub => '8004', role => 'user' }, ''), 403, 'forbidden',
	"a user re-indexing another's market");
my @ids = map { post_json("/api/markets/$mine/index", $_, '')->{json}{data}{job_id} } \%user, \%user, \%moderator, \%admin;
ok(defined $ids[0], 'the creator queues a re-index') or diag(explain \@ids);
is_deeply(\@ids, [($ids[0]) x 4], 'while it is queued, every request gets the same job (creator, moderator, admin)');
sub queued_for { ($t->sql("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND JSON_VALUE(payload, '\$.market_id') = $_[0]"))[0][0] }
is(queued_for($mine), 1, 'one queued job for the market');
$r = $t->request('PATCH', "/api/markets/$mine", { headers => { %{ $t->bearer(%user) }, 'Content-Type' => 'application/json' },
	content => '{"name":"counted, renamed"}' });
is($r->{status}, 200, 'a text edit');
is(queued_for($mine), 1, 'the edit reuses the queued job too');
$t->sql("UPDATE jobs SET status = 'running', locked_by = 'test', locked_until = NOW() + INTERVAL 1 MINUTE WHERE id = $ids[0]");
my $next = post_json("/api/markets/$mine/index", \%user, '')->{json}{data}{job_id};
ok($next && $next != $ids[0], 'once a runner holds it, a new request queues a new job');

# ---- a volume past DECIMAL(20,2) ------------------------------------------------------
$t->sql("UPDATE markets SET volume = 999999999999999999.00, status = 'active' WHERE id = 5");
my ($positions_before) = map { $_->[0] } $t->sql('SELECT COUNT(*) FROM positions WHERE market_id = 5');
$r = post_json('/api/markets/5/positions', \%user, { side => 'yes', amount => '0.99' });
is($r->{status}, 201, 'a buy up to the largest volume: 201') or diag($r->{content});
is(($t->sql('SELECT volume FROM markets WHERE id = 5'))[0][0], '999999999999999999.99', 'the volume is at its largest');
for my $key (undef, 'overflow-1') {
	my $what = defined $key ? 'with an Idempotency-Key' : 'plain';
	$r = post_json('/api/markets/5/positions', \%user, { side => 'no', amount => '0.01' },
		defined $key ? ('Idempotency-Key' => $key) : ());
	$t->is_error($r, 409, 'conflict', "a buy past the largest volume ($what)");
	like($r->{json}{error} // '', qr/volume/, "$what: the message says why");
}
$r = post_json('/api/markets/5/positions', \%user, { side => 'no', amount => '0.01' }, 'Idempotency-Key' => 'overflow-1');
like($r->{json}{error} // '', qr/volume/, 'a retry with the key gets the same reason, not "still running"');
is(($t->sql('SELECT COUNT(*) FROM positions WHERE market_id = 5'))[0][0], $positions_before + 1, 'no position written by the refused buys');
is(($t->sql('SELECT volume FROM markets WHERE id = 5'))[0][0], '999999999999999999.99', 'the volume unchanged');

# ---- a trickling FastCGI request is closed after request_timeout ----------------------
SKIP: {
	skip "no app socket: under mod_fcgid Apache hands each process its own, and times requests out itself", 1 if $fcgid;
	my $c = Markets::FastCGI->connect($t->app_socket);
	my $bytes = Markets::FastCGI::record(Markets::FastCGI::BEGIN_REQUEST, 1,
		pack('nCx5', Markets::FastCGI::RESPONDER, Markets::FastCGI::KEEP_CONN))
		. Markets::FastCGI::params_records(1, REQUEST_METHOD => 'GET', REQUEST_URI => '/healthz',
			SERVER_PROTOCOL => 'HTTP/1.1', REMOTE_ADDR => '127.0.0.1', HTTP_X_PADDING => 'p' x 200);
	my ($t0, $closed, $sent) = (time, 0, 0);
	local $SIG{PIPE} = 'IGNORE';
	# One byte every 0.25 s: each is activity, none completes the request.
	while (!$closed && $sent < length($bytes) - 1 && time - $t0 < 20) {
		my $ok = eval { $c->send_bytes(substr($bytes, $sent, 1)); 1 };
		$sent++ if $ok;
		my $r = $c->read_response(timeout => 0.25);
		$closed = 1 if !$ok || $r->{eof};
	}
	ok($closed, sprintf('a request trickling a byte every 0.25 s is closed (after %.1f s, %d bytes; request_timeout 2 s)',
		time - $t0, $sent));
	ok($sent < length($bytes) - 1, 'before it could arrive whole');
	ok($t->wait_until(5, sub { grep { /did not arrive whole within request_timeout/ } $t->log_text_lines }),
		'the close is logged');
	is(Markets::FastCGI->simple($t->app_socket)->{status}, 200, 'the worker serves on');
}

$t->finish;
done_testing;
