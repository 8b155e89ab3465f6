#!/usr/bin/perl
# The durable job queue (src/jobs/) seen from outside, with short leases
# and back-offs:
# - an embedder that is down never slows a write: the POST answers 201 at
#   once, and its index job is retried with a growing back-off until it is
#   dead (attempts = max_attempts, last_error, finished_at);
# - a job of an unknown type is dead after max_attempts with "unknown job type";
# - with an embedding server (a stub this test runs: OpenAI-compatible
#   answers of 8 numbers) jobs end done and searches are embedded by it too;
# - a runner SIGKILLed mid-job: the master starts another, the job runs
#   again once its lease ran out, and its effect is there exactly once;
# - a market deleted while its index job runs leaves no vector behind;
# - MariaDB SIGKILLed while a runner drains 200 jobs, then restarted: every
#   job ends done, none lost, none stuck;
# - the app stopped with jobs queued (and more queued while it is down),
#   then started: every job ends done.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp ();
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);
use Markets::Test;

Markets::Test::fronts_only([qw(nginx apache-proxy)], "the master's job runners (back-off gaps, a runner killed and restarted, the app stopped with jobs queued); under mod_fcgid cron's drain runs the queue: t/43 and t/54");

sub h { Markets::Test::header(@_) }
my %admin = (sub => '7001', role => 'admin');
my %moderator = (sub => '7002', role => 'moderator');
my %writer = (sub => '7003', role => 'user', email => 'writer@example.org');

# ---- the stub embedding server ---------------------------------------------------
# Forked before any stack, so that it holds none of their handles. It forks a
# child per connection; each request's input is appended to requests.log.
# A file "hold" (seconds) makes the next request wait that long before
# answering (only one request takes it); a file "delay" (seconds) slows every
# request. The vector counts 8 key words, so a text's topic is its words.
my @KEYWORDS = qw(alpha bravo charlie delta echo foxtrot golf hotel);
my $stub_dir = File::Temp::tempdir('markets-stub-XXXXXX', TMPDIR => 1, CLEANUP => 1);
sub stub_vector {
	my ($text) = @_;
	my @v = map { my $k = $_; scalar(() = $text =~ /\b\Q$k\E\b/gi) } @KEYWORDS;
	return \@v;
}
sub stub_serve {
	my ($c) = @_;
	local $/ = "\r\n\r\n";
	my $head = <$c>;
	return unless defined $head;
	my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
	my $body = '';
	while (length $body < ($len // 0)) {
		my $n = read($c, $body, $len - length $body, length $body);
		last unless $n;
	}
	my $in = eval { JSON::PP->new->utf8->decode($body) } || {};
	my $text = $in->{input} // '';
	if (open my $log, '>>', "$stub_dir/requests.log") {
		my $line = $text =~ s/\n/ /gr;
		utf8::encode($line);
		print $log "$line\n";
		close $log;
	}
	if (open my $fh, '<', "$stub_dir/hold") {
		my $secs = <$fh>;
		close $fh;
		sleep $secs if unlink "$stub_dir/hold";
	}
	if (open my $fh, '<', "$stub_dir/delay") {
		my $secs = <$fh>;
		close $fh;
		sleep $secs if $secs;
	}
	my $answer = encode_json({ object => 'list', model => 'stub',
		data => [{ object => 'embedding', index => 0, embedding => stub_vector($text) }] });
	print {$c} "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " . length($answer)
		. "\r\nConnection: close\r\n\r\n$answer";
}
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128, ReuseAddr => 1, Proto => 'tcp')
	or BAIL_OUT("stub: cannot listen: $!");
my $stub_port = $listener->sockport;
my $stub_pid = fork // BAIL_OUT("fork: $!");
if ($stub_pid == 0) {
	alarm 300; # never outlives a test run by much, whatever happens to it
	$SIG{PIPE} = 'IGNORE';
	$SIG{CHLD} = 'IGNORE'; # connection children reap themselves
	for (;;) {
		my $c = $listener->accept or next;
		my $kid = fork;
		if (defined $kid && $kid == 0) {
			close $listener;
			$c->autoflush(1);
			stub_serve($c);
			close $c;
			POSIX::_exit(0);
		}
		close $c;
	}
}
close $listener;
my $parent = $$;
END { kill 'KILL', $stub_pid if $$ == ($parent // 0) && $stub_pid && $stub_pid > 1 && kill 0, $stub_pid }
sub stub_set { my ($file, $value) = @_; open my $fh, '>', "$stub_dir/$file.tmp" or die $!; print $fh $value; close $fh;
	rename "$stub_dir/$file.tmp", "$stub_dir/$file" or die $! }
sub stub_clear { unlink "$stub_dir/$_[0]" }
sub stub_requests { grep { length } split /\n/, Markets::Test::slurp("$stub_dir/requests.log") }

# ---- helpers ------------------------------------------------------------------------
sub write_req {
	my ($t, $method, $path, $claims, $body) = @_;
	return $t->request($method, $path, { headers => { %{ $t->bearer(%$claims) }, 'Content-Type' => 'application/json' },
		defined $body ? (content => encode_json($body)) : () });
}
sub create_market {
	my ($t, $name, $description) = @_;
	my $t0 = time;
	my $r = write_req($t, 'POST', '/api/markets', \%writer, { name => $name, description => $description // '' });
	return ($r, time - $t0);
}
sub jobs_of {
	my ($t, $id) = @_;
	return $t->sql("SELECT id, status, attempts, locked_by FROM jobs WHERE type = 'index_market' "
		. "AND JSON_VALUE(payload, '\$.market_id') = $id ORDER BY id");
}
sub job_row {
	my ($t, $id) = @_;
	# NULL as '-': the harness's split drops trailing empty columns.
	my ($row) = $t->sql("SELECT status, attempts, IFNULL(last_error, '-'), IFNULL(finished_at, '-'), IFNULL(locked_by, '-') "
		. "FROM jobs WHERE id = $id");
	return $row || [];
}
sub status_counts {
	my ($t, $where) = @_;
	my %n = map { $_->[0] => $_->[1] } $t->sql("SELECT status, COUNT(*) FROM jobs WHERE $where GROUP BY status");
	return \%n;
}
sub fmt_counts { my ($n) = @_; join ', ', map { "$_=$n->{$_}" } sort keys %$n }
# Seconds since the epoch of a log line's "time" (RFC 3339 with milliseconds).
sub log_time {
	my ($s) = @_;
	my ($y, $mo, $d, $h, $mi, $sec, $frac) = $s =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?Z$/ or return undef;
	return timegm($sec, $mi, $h, $d, $mo - 1, $y) + ($frac ? "0.$frac" : 0);
}
sub alive {
	my ($pid) = @_;
	return $pid > 0 && kill(0, $pid) && (Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S)/s)[0] ne 'Z';
}
sub ppid_of { (split ' ', (Markets::Test::slurp("/proc/$_[0]/stat") =~ /^\d+ \(.*\) (.*)$/s)[0] // '')[1] // 0 }
# The "job runner HOST:PID started" lines: the runner names in order.
sub runners_started { map { ($_->{msg} // '') =~ /^job runner (\S+) started/ ? $1 : () } $_[0]->log_lines }

my $common = { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_EMBEDDER => 'http', MARKETS_EMBEDDING_DIM => 8,
	MARKETS_JOB_LEASE => '2s', MARKETS_JOB_POLL => '50ms' };

# ==== 1. the embedder is down: retries with a growing back-off, then dead ==========
{
	my $dead_port = Markets::Test::free_port();
	my $t = Markets::Test->new(env => { %$common, MARKETS_EMBEDDER_URL => "http://127.0.0.1:$dead_port/v1/embeddings",
		MARKETS_JOB_MAX_ATTEMPTS => 3, MARKETS_JOB_BACKOFF => '400ms', MARKETS_EMBEDDER_TIMEOUT => '1s' });
	my ($r, $took) = create_market($t, 'Will the Alpha river bridge open in 2031?', 'Alpha bridge.');
	is($r->{status}, 201, 'embedder down: a create still answers 201') or diag($r->{content});
	ok($took < 1.0, sprintf('at once (%.3f s): the write does not wait on the embedder', $took));
	my $id = $r->{json}{data}{id} // 0;
	my @jobs = jobs_of($t, $id);
	is(scalar @jobs, 1, 'one index job, committed with the market');
	my $jid = $jobs[0][0] // 0;
	my $t0 = time;
	ok($t->wait_until(15, sub { job_row($t, $jid)->[0] eq 'dead' }), 'the job ends dead')
		or diag(explain(job_row($t, $jid)));
	diag(sprintf 'dead after %.2f s', time - $t0);
	my ($status, $attempts, $error, $finished, $locked_by) = @{ job_row($t, $jid) };
	is($attempts, 3, 'after max_attempts (3) attempts');
	ok($error ne '-', "last_error is kept ($error)");
	ok($finished ne '-', 'finished_at is set');
	is($locked_by, '-', 'no runner holds it');
	my $j = $t->get("/api/jobs/$jid", { headers => $t->bearer(%admin) })->{json}{data} || {};
	is_deeply([@$j{qw(status attempts last_error)}], ['dead', 3, $error], 'GET /api/jobs/:id says the same');
	ok(defined $j->{finished_at}, 'with finished_at');

	# The attempts, from the runner's log lines, and the gaps between them.
	my @fails = map { ($_->{msg} // '') =~ /^job $jid \(index_market\) attempt (\d+) of 3 failed/ ? [$1, log_time($_->{time}), $_->{role}] : () }
		$t->log_lines;
	is_deeply([map { $_->[0] } @fails], [1, 2, 3], 'attempts 1, 2 and 3 failed, each logged once');
	is_deeply([map { $_->[2] } @fails], ['runner', 'runner', 'runner'], 'by the job runner');
	if (@fails == 3) {
		my ($g1, $g2) = ($fails[1][1] - $fails[0][1], $fails[2][1] - $fails[1][1]);
		diag(sprintf 'gaps between attempts: %.3f s, %.3f s (back-off 400 ms, doubling, jitter in [d/2, d])', $g1, $g2);
		# Retry n waits within [b·2^(n-1)/2, b·2^(n-1)] (plus a poll and a claim).
		ok($g1 >= 0.195 && $g1 <= 0.4 + 1.0, sprintf('first retry after 200-400 ms (%.3f s)', $g1));
		ok($g2 >= 0.395 && $g2 <= 0.8 + 1.0, sprintf('second retry after 400-800 ms (%.3f s)', $g2));
		ok($g2 >= 0.75 * $g1, 'the gaps grow (roughly)');
	}
	is(scalar(grep { /\Q127.0.0.1:$dead_port\E/ && /error/ } $t->log_text_lines) >= 1, 1, 'the embedder outage is logged');

	# A search needs the embedder too: without it the answer is a 503, not a 500.
	my $s = $t->get('/api/markets/search?q=alpha+bridge');
	$t->is_error($s, 503, 'unavailable', 'search with the embedder down');
	unlike($s->{content}, qr/127\.0\.0\.1|embedder|connect/i, 'no internals in the body');

	# A job of an unknown type: dead after max_attempts, "unknown job type".
	$t->sql(q{INSERT INTO jobs (type, payload, max_attempts) VALUES ('frobnicate', '{"market_id":1}', 3)});
	my ($unknown) = map { $_->[0] } $t->sql(q{SELECT MAX(id) FROM jobs WHERE type = 'frobnicate'});
	ok($t->wait_until(15, sub { job_row($t, $unknown)->[0] eq 'dead' }), 'a job of an unknown type ends dead')
		or diag(explain(job_row($t, $unknown)));
	my $u = job_row($t, $unknown);
	is($u->[1], 3, 'after max_attempts (3)');
	is($u->[2], 'unknown job type', 'last_error "unknown job type"');
	ok($u->[3] ne '-', 'finished_at set');

	# Hostile payloads of a known type: dead with the reason, nothing else touched.
	for my $case (['{}', 'no market_id'], ['{"market_id":"1"}', 'a string'], ['{"market_id":-3}', 'negative'],
		['{"market_id":1.5}', 'not an integer'], ['[1,2]', 'not an object'],
		['{"market_id":1,"market_id":2}', 'a duplicated member']) {
		my ($payload, $what) = @$case;
		(my $quoted = $payload) =~ s/'/''/g;
		$t->sql("INSERT INTO jobs (type, payload, max_attempts) VALUES ('index_market', '$quoted', 1)");
		my ($id) = map { $_->[0] } $t->sql(q{SELECT MAX(id) FROM jobs});
		ok($t->wait_until(15, sub { job_row($t, $id)->[0] eq 'dead' }), "payload $what: the job ends dead")
			or diag(explain(job_row($t, $id)));
		is(job_row($t, $id)->[2], 'payload has no market_id', "payload $what: last_error says why");
	}
	ok(scalar(grep { /"level":"(error|warn)"/ && /"role":"worker"/ && /500|internal/ } $t->log_text_lines) == 0,
		'no worker reported an internal error meanwhile');
	$t->finish;
}

# ==== 2. with an embedding server ====================================================
my $t = Markets::Test->new(env => { %$common, MARKETS_EMBEDDER_URL => "http://127.0.0.1:$stub_port/v1/embeddings",
	MARKETS_EMBEDDER_MODEL => 'stub-8', MARKETS_JOB_MAX_ATTEMPTS => 5, MARKETS_JOB_BACKOFF => '100ms',
	MARKETS_EMBEDDER_TIMEOUT => '10s', MARKETS_JOB_RUNNERS => 2 });
my $master = $t->master_pid;
ok($t->wait_until(10, sub { runners_started($t) == 2 && $t->runner_pids == 2 }), 'two job runners started');
my %market;
for my $kw (qw(alpha bravo charlie)) {
	my ($r) = create_market($t, "Will the \u$kw depot open on time?", "The $kw depot.");
	is($r->{status}, 201, "create the $kw market");
	$market{$kw} = $r->{json}{data}{id} // 0;
}
ok($t->wait_until(10, sub { (status_counts($t, "type = 'index_market'")->{done} // 0) == 3 }), 'their jobs end done');
is_deeply([$t->sql("SELECT embedder, dim, COUNT(*) FROM market_embeddings WHERE vector IS NOT NULL GROUP BY embedder, dim")],
	[['http:stub-8', 8, 3]], 'three vectors of the http embedder, 8 dimensions');
my $s;
ok($t->wait_until(10, sub {
	$s = $t->get('/api/markets/search?q=bravo+depot+timing');
	(($s->{json}{data} || [])->[0]{id} // 0) == $market{bravo};
}), 'search finds the bravo market first') or diag($s->{content});
ok(((($s->{json}{data} || [])->[0]{score}) // 0) > 0.99, 'with a cosine of 1');
ok((grep { $_ eq 'bravo depot timing' } stub_requests()), 'the query was embedded by the same server');

# ---- a runner SIGKILLed mid-job ------------------------------------------------------
stub_set('hold', 5);
my ($r) = create_market($t, 'Will the Echo canal reopen?', 'Echo canal works.');
is($r->{status}, 201, 'create the echo market (its embedding will hang for 5 s)');
my $echo = $r->{json}{data}{id} // 0;
my @held;
ok($t->wait_until(10, sub { @held = jobs_of($t, $echo); @held == 1 && $held[0][1] eq 'running' && $held[0][3] ne 'NULL' }),
	'its job is running') or diag(explain(\@held));
my $echo_job = $held[0][0] // 0;
my ($victim_name) = ($held[0][3] // '');
my ($victim) = $victim_name =~ /:(\d+)$/;
$victim //= 0;
ok($victim > 1, "locked_by names the runner ($victim_name)");
ok((grep { $_ eq $victim_name } runners_started($t)), 'a job runner that logged its start');
is(ppid_of($victim), $master, "the runner $victim is a child of the master");
ok((grep { $_ == $victim } $t->runner_pids), 'one of its job runners, not a worker');
ok((grep { $_->{pid} == $victim && $_->{role} eq 'runner' } $t->log_lines), 'whose log lines say role "runner"');
sleep 0.3; # well inside its embedding
my $started_before = () = runners_started($t);
ok($victim > 1 && kill('KILL', $victim), "SIGKILL runner $victim mid-job");
ok($t->wait_until(10, sub { !alive($victim) && runners_started($t) > $started_before }), 'the master starts another runner');
ok($t->wait_until(5, sub { grep { /job runner $victim died by signal 9/ } $t->log_text_lines }), 'the death is logged');
ok($t->wait_until(15, sub { job_row($t, $echo_job)->[0] eq 'done' }), 'after the lease ran out the job runs again and ends done')
	or diag(explain(job_row($t, $echo_job)));
my $ej = job_row($t, $echo_job);
is($ej->[1], 2, 'attempts = 2');
is($ej->[2], '-', 'no last_error');
is(scalar(my @ejobs = jobs_of($t, $echo)), 1, 'still one job for the market');
is_deeply([$t->sql("SELECT COUNT(*) FROM market_embeddings WHERE market_id = $echo AND vector IS NOT NULL")], [[1]],
	'exactly one embedding row for the market');
is(scalar(grep { /Echo canal/ } stub_requests()), 2, 'the market was embedded twice (the killed attempt and the retry)');
my @alive_runners = grep { alive($_) && ppid_of($_) == $master } map { /:(\d+)$/ ? $1 : () } runners_started($t);
is(scalar @alive_runners, 2, 'two runners run again (job_runners = 2)');
is_deeply([sort { $a <=> $b } @alive_runners], [$t->runner_pids], 'the master\'s runner children are those');
ok($t->wait_until(10, sub { (($t->get('/api/markets/search?q=echo')->{json}{data} || [])->[0]{id} // 0) == $echo }),
	'and the market is searchable');

# ---- a market deleted while its index job embeds it ----------------------------------
# The job read the market before the DELETE committed and stores after it:
# the stored vector must not outlive the market (else it takes a place in
# every top k and the page comes back short).
($r) = create_market($t, 'Will the Delta quarry reopen?', 'Delta quarry, echo valley.');
my $quarry = $r->{json}{data}{id} // 0;
($r) = create_market($t, 'Will the Delta harbour be dredged?', 'Delta harbour.');
my $harbour = $r->{json}{data}{id} // 0;
ok($t->wait_until(10, sub { my @q = jobs_of($t, $quarry); my @h = jobs_of($t, $harbour);
	@q && $q[0][1] eq 'done' && @h && $h[0][1] eq 'done' }), 'two delta markets are indexed');
sub delete_during_job {
	my ($id, $job, $name) = @_;
	my $row;
	ok($t->wait_until(10, sub { $row = job_row($t, $job); $row->[0] eq 'running' }), "$name: its index job is embedding it")
		or diag(explain($row));
	is(write_req($t, 'DELETE', "/api/markets/$id", \%moderator)->{status}, 204, "$name: DELETE the market meanwhile: 204");
	ok($t->wait_until(10, sub { job_row($t, $job)->[0] =~ /^(done|dead)$/ }), "$name: the job finishes");
	is_deeply([$t->sql("SELECT COUNT(*) FROM market_embeddings WHERE market_id = $id AND vector IS NOT NULL")], [[0]],
		"$name: no vector is left for the deleted market");
}
# A new market, its first index job in flight.
stub_set('hold', 1);
($r) = create_market($t, 'Will the Delta lighthouse be repainted?', 'Delta lighthouse.');
my $doomed = $r->{json}{data}{id} // 0;
delete_during_job($doomed, (jobs_of($t, $doomed))[0][0] // 0, 'a new market');
# An indexed market, a re-index in flight.
stub_set('hold', 1);
$r = write_req($t, 'POST', "/api/markets/$harbour/index", \%writer);
is($r->{status}, 202, 're-index the delta harbour market: 202');
delete_during_job($harbour, $r->{json}{data}{job_id} // 0, 'an indexed market');
sleep 1.5; # a refresh tick
my $d = $t->get('/api/markets/search?q=delta&limit=1');
is_deeply([map { $_->{id} } @{ $d->{json}{data} || [] }], [$quarry], 'limit=1 returns the best existing market')
	or diag($d->{content});
$d = $t->get('/api/markets/search?q=delta&limit=3');
is($d->{json}{meta}{count} // scalar(@{ $d->{json}{data} || [] }), 3, 'limit=3 returns 3 markets (5 exist)')
	or diag($d->{content});

# ---- MariaDB SIGKILLed while the runner drains 200 jobs ------------------------------
stub_set('delay', 0.02);
$t->sql(q{INSERT INTO markets (name, description, creator_id) SELECT CONCAT('Bulk market ', seq, ' foxtrot'), 'golf', 7003 FROM seq_1_to_200});
$t->sql(q{INSERT INTO jobs (type, payload, max_attempts) SELECT 'index_market', JSON_OBJECT('market_id', id), 5 FROM markets
	WHERE name LIKE 'Bulk market %' ORDER BY id});
my ($first_bulk, $last_bulk) = @{ ($t->sql(q{SELECT MIN(id), MAX(id) FROM jobs WHERE JSON_VALUE(payload, '$.market_id') IN
	(SELECT id FROM markets WHERE name LIKE 'Bulk market %')}))[0] };
my $bulk = "id BETWEEN $first_bulk AND $last_bulk";
is(($t->sql("SELECT COUNT(*) FROM jobs WHERE $bulk"))[0][0], 200, '200 jobs queued');
ok($t->wait_until(10, sub { (status_counts($t, $bulk)->{done} // 0) >= 16 }), 'the runner is draining them');
my $before = status_counts($t, $bulk);
my $mysqld = $t->pid_of('mysqld');
ok($mysqld && $mysqld > 1 && kill('KILL', $mysqld), "SIGKILL MariaDB ($mysqld) mid-drain (" . fmt_counts($before) . ')');
ok(($before->{done} // 0) < 200, 'with jobs still to run');
ok($t->wait_until(10, sub { !alive($mysqld) }), 'MariaDB is gone');
sleep 1;
$t->start('mariadb');
my $after;
ok($t->wait_until(40, sub { $after = status_counts($t, $bulk); ($after->{done} // 0) == 200 }), 'after the restart every job ends done')
	or diag(fmt_counts($after));
is_deeply($after, { done => 200 }, 'none stuck queued, running or failed; none dead');
is(($t->sql("SELECT COUNT(*) FROM market_embeddings e JOIN markets m ON m.id = e.market_id "
	. "WHERE m.name LIKE 'Bulk market %' AND e.vector IS NOT NULL"))[0][0], 200, 'every bulk market has its vector');
diag('attempts after the crash: ' . join ', ', map { "$_->[0]×$_->[1]" } $t->sql("SELECT attempts, COUNT(*) FROM jobs WHERE $bulk GROUP BY attempts"));

# ---- the app stopped with jobs queued, and started again ------------------------------
stub_set('delay', 0.05);
$t->sql(q{INSERT INTO jobs (type, payload, max_attempts) SELECT 'index_market', JSON_OBJECT('market_id', id), 5 FROM markets
	WHERE name LIKE 'Bulk market %' ORDER BY id LIMIT 100});
my ($restart_from) = map { $_->[0] } $t->sql(q{SELECT MAX(id) - 99 FROM jobs});
my $second = "id >= $restart_from";
ok($t->wait_until(10, sub { (status_counts($t, $second)->{done} // 0) >= 8 }), '100 more jobs queued and draining');
$master = $t->master_pid;
ok($master && $master > 1 && kill('TERM', $master), "stop the app (SIGTERM to master $master)");
ok($t->wait_until(30, sub { !alive($master) }), 'the app stopped');
my $at_stop = status_counts($t, $second);
ok(($at_stop->{done} // 0) < 100, 'with jobs left (' . fmt_counts($at_stop) . ')');
$t->sql(q{INSERT INTO jobs (type, payload, max_attempts) SELECT 'index_market', JSON_OBJECT('market_id', id), 5 FROM markets
	WHERE name LIKE 'Bulk market %' ORDER BY id DESC LIMIT 20});
sleep 0.5;
my $down = status_counts($t, $second);
is(($down->{done} // 0), ($at_stop->{done} // 0), 'nothing runs while the app is down (20 more queued)');
stub_clear('delay');
$t->start('app');
my $end;
ok($t->wait_until(40, sub { $end = status_counts($t, $second); ($end->{done} // 0) == 120 }), 'after the start all 120 end done')
	or diag(fmt_counts($end));
is_deeply($end, { done => 120 }, 'nothing lost, stuck or dead');
is_deeply([$t->sql("SELECT COUNT(*) FROM jobs WHERE status <> 'done' AND type = 'index_market'")], [[0]],
	'no index job anywhere is left undone');

$t->finish;

# The stub (its connection children end by themselves).
kill 'KILL', $stub_pid if $stub_pid > 1;
waitpid $stub_pid, 0;
$stub_pid = 0;
done_testing;
