#!/usr/bin/perl
# Search with a slow embedder (issue 10): with embedder = http, a search
# whose query must be embedded waits without holding its worker.
# - One worker, a stub embedding server that accepts and never answers:
#   while several searches wait for it, GET /healthz and GET
#   /api/markets/:id through the same worker answer (before the searches
#   do), and then the searches answer 503 with Retry-After and the
#   contract's envelope, one access line each (and a slow-request line
#   whose wait phase is most of their time).
# - A client that gives up on a waiting search: the request is logged once
#   (499) and leaves nothing behind (the sanitizers check at the end).
# - With the stub answering: the Authorization header from
#   embedder_api_key_file reaches it, and a second identical query (up to
#   blanks and case) comes from memcached: the stub sees one request.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

sub h { Markets::Test::header(@_) }

# ---- the stub embedding server ---------------------------------------------------
# A child per connection; each request's Authorization and input are
# appended to requests.log. While the file "hang" exists, a request is
# read and never answered (the child holds the socket until killed).
my $stub_dir = File::Temp::tempdir('markets-stub42-XXXXXX', TMPDIR => 1, CLEANUP => 1);
sub stub_serve {
	my ($c) = @_;
	local $/ = "\r\n\r\n";
	while (defined(my $head = <$c>)) {
		my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
		my ($auth) = $head =~ /^Authorization:\s*([^\r\n]*)/mi;
		my $body = '';
		while (length $body < ($len // 0)) {
			my $n = read($c, $body, $len - length $body, length $body);
			last unless $n;
		}
		my $in = eval { JSON::PP->new->utf8->decode($body) } || {};
		my $text = $in->{input} // '';
		if (open my $log, '>>', "$stub_dir/requests.log") {
			my $line = ($auth // '-') . "\t" . ($text =~ s/\n/ /gr);
			utf8::encode($line);
			print $log "$line\n";
			close $log;
		}
		if (-e "$stub_dir/hang") {
			sleep 1 while 1; # never answers
		}
		my $answer = encode_json({ object => 'list', model => 'stub',
			data => [{ object => 'embedding', index => 0, embedding => [1, 2, 0, 0, 0, 0, 0, 1] }] });
		# Kept alive: the embedder may send its next request on this connection.
		print {$c} "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
			. length($answer) . "\r\n\r\n$answer";
	}
}
my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128, ReuseAddr => 1, Proto => 'tcp')
	or BAIL_OUT("stub: cannot listen: $!");
my $stub_port = $listener->sockport;
my $stub_pid = fork // BAIL_OUT("fork: $!");
if ($stub_pid == 0) {
	alarm 300; # never outlives a test run by much, whatever happens to it
	$SIG{PIPE} = 'IGNORE';
	$SIG{CHLD} = 'IGNORE';
	POSIX::setpgid(0, 0); # its connection children go with it
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
END { kill 'KILL', -$stub_pid if $$ == $parent && $stub_pid && $stub_pid > 1 }
sub stub_requests { grep { length } split /\n/, Markets::Test::slurp("$stub_dir/requests.log") }

my $key_file = "$stub_dir/embedder.key";
{
	open my $fh, '>', $key_file or die $!;
	print $fh "  sk-test-42-secret  \n# the rest of the file is ignored\n";
	close $fh;
}
# Under the mod_fcgid fronts the app runs as Apache's or the site owner's
# account, not ours: it must be able to read the key (an operator would
# give the file to that account).
if ($Markets::Test::MOD_FCGID{ Markets::Test::test_front() }) {
	chmod 0711, $stub_dir or die $!;
	chmod 0644, $key_file or die $!;
}

my %writer = (sub => '8003', role => 'user', email => 'writer42@example.org');
my $t = Markets::Test->new(env => {
	MARKETS_WORKERS => 1, MARKETS_RATE_LIMIT => '1000000/60', MARKETS_JOB_RUNNERS => 0,
	MARKETS_EMBEDDER => 'http', MARKETS_EMBEDDING_DIM => 8, MARKETS_EMBEDDER_MODEL => 'stub-8',
	MARKETS_EMBEDDER_URL => "http://127.0.0.1:$stub_port/v1/embeddings",
	MARKETS_EMBEDDER_TIMEOUT => '2s', MARKETS_EMBEDDER_API_KEY_FILE => $key_file });

my $created = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(%writer) },
	'Content-Type' => 'application/json' }, content => encode_json({ name => 'Will the slow embedder stall?' }) });
is($created->{status}, 201, 'a market to read while searches wait') or diag($created->{content});
my $market_id = $created->{json}{data}{id} // 1;

sub qenc { my ($s) = @_; $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge; $s }

# ==== 1. the stub answers: the key reaches it, a repeated query is cached ==========
{
	my $r1 = $t->get('/api/markets/search?q=' . qenc('  Alpha   BRAVO  charlie '));
	is($r1->{status}, 200, 'a search with the embedder answering: 200') or diag($r1->{content});
	is($r1->{json}{meta}{embedder}, 'http:stub-8', 'the http embedder answered it');
	my @seen = stub_requests();
	is(scalar @seen, 1, 'the stub saw one request');
	is((split /\t/, $seen[0] // '')[0], 'Bearer sk-test-42-secret', 'Authorization from embedder_api_key_file, trimmed');
	is((split /\t/, $seen[0] // '', 2)[1], 'alpha bravo charlie', 'the query is sent normalised (blanks collapsed, lower case)');
	my $r2 = $t->get('/api/markets/search?q=' . qenc("alpha bravo\tCharlie"));
	is($r2->{status}, 200, 'the same query again (other blanks and case): 200');
	is(scalar(stub_requests()), 1, 'served from the memcached cache: the stub saw no second request');
	my $r3 = $t->get('/api/markets/search?q=' . qenc('alpha bravo delta'));
	is($r3->{status}, 200, 'another query: 200');
	is(scalar(stub_requests()), 2, 'another query is embedded: the stub saw a second request');
}

# ==== 2. the stub never answers: the worker serves others meanwhile ===============
{
	open my $fh, '>', "$stub_dir/hang" or die $!;
	close $fh;
	my $before = scalar stub_requests();
	my $out = File::Temp::tempdir('markets-t42-XXXXXX', TMPDIR => 1, CLEANUP => 1);
	my $n = 4;
	my @kids;
	my $started = time;
	for my $i (1 .. $n) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $http = HTTP::Tiny->new(timeout => 30);
			my $res = $http->get($t->base_url . $t->path('/api/markets/search?q=' . qenc("hanging query number $i")));
			my $rec = { status => $res->{status}, content => $res->{content} // '', ended => time,
				retry_after => $res->{headers}{'retry-after'}, request_id => $res->{headers}{'x-request-id'},
				content_type => $res->{headers}{'content-type'} };
			open my $o, '>', "$out/$i.tmp" or POSIX::_exit(1);
			print $o encode_json($rec);
			close $o;
			rename "$out/$i.tmp", "$out/$i.json";
			POSIX::_exit(0);
		}
		push @kids, $pid;
	}
	ok($t->wait_until(10, sub { scalar(stub_requests()) >= $before + $n }),
		"all $n searches reached the stub (each is waiting for it)");
	my $waiting_at = time;
	my @done_before = glob("$out/*.json");
	# mod_fcgid gives a process one request at a time: each waiting search
	# holds its own, started for it (seconds each, built with ASan, on a
	# loaded machine: the first may time out before the last one starts),
	# and Apache starts others for the requests below.
	my $fcgid_why = 'mod_fcgid: one request a process, each search in a process of its own that Apache starts for it';
	SKIP: {
		skip $fcgid_why, 1 if $t->mod_fcgid;
		is(scalar @done_before, 0, 'no search has answered yet');
	}

	my (@lat, $health, $market);
	for my $k (1 .. 3) {
		my $t0 = time;
		$health = $t->get('/healthz');
		push @lat, ['healthz', time - $t0];
		$t0 = time;
		$market = $t->get("/api/markets/$market_id");
		push @lat, ["markets/$market_id", time - $t0];
	}
	my $served_at = time;
	is($health->{status}, 200, 'GET /healthz answers 200 while searches wait');
	is($market->{status}, 200, "GET /api/markets/$market_id answers 200 while searches wait");
	my @done_after = glob("$out/*.json");
	SKIP: {
		skip $fcgid_why, 1 if $t->mod_fcgid;
		is(scalar @done_after, 0, 'they answered before any waiting search did (the worker was not held)');
	}
	diag(sprintf('%s: %.1f ms', $_->[0], $_->[1] * 1000)) for @lat;
	diag(sprintf('searches waiting since %.0f ms; the six requests took %.0f ms in all',
		($waiting_at - $started) * 1000, ($served_at - $waiting_at) * 1000));

	waitpid($_, 0) for @kids;
	for my $i (1 .. $n) {
		my $rec = eval { decode_json(Markets::Test::slurp("$out/$i.json")) } || {};
		my $r = { status => $rec->{status}, content => $rec->{content} // '',
			headers => { 'x-request-id' => $rec->{request_id}, 'content-type' => $rec->{content_type} } };
		$r->{json} = eval { decode_json($r->{content}) };
		$t->is_error($r, 503, 'unavailable', "waiting search $i");
		ok(defined $rec->{retry_after} && $rec->{retry_after} =~ /^\d+$/, "waiting search $i: Retry-After")
			or diag($rec->{retry_after});
		diag(sprintf('search %d answered after %.0f ms', $i, (($rec->{ended} // 0) - $started) * 1000));
		my $line = $rec->{request_id} ? $t->access_line($rec->{request_id}) : undef;
		is($line && $line->{status}, 503, "waiting search $i: its access line says 503");
		# Slower than slow_request_threshold (1s): the slow line says where the
		# time went (written beside the access line: wait for both).
		my (@lines, $slow);
		$t->wait_until(5, sub {
			@lines = grep { ($_->{request_id} // '') eq ($rec->{request_id} // '-') } $t->log_lines;
			($slow) = grep { ($_->{msg} // '') eq 'slow request' } @lines;
			$slow;
		});
		is(scalar(grep { !defined $_->{msg} } @lines), 1, "waiting search $i: one access line");
		# Under mod_fcgid a search whose process started after others had
		# timed out finds the embedder's breaker open: a 503 at once, not slow.
		next if $t->mod_fcgid && $line && ($line->{duration_us} // 0) < 1_000_000
			&& note("waiting search $i: answered at once by the open breaker (its process started late): no slow line") + 1;
		my $p = $slow ? $slow->{phases_ms} : {};
		ok($slow && $p->{wait} > $p->{total} / 2,
			sprintf('waiting search %d: its slow line puts most of it in the wait phase (%s of %s ms)', $i,
				$p->{wait} // '?', $p->{total} // '?'));
	}
}

# ==== 3. a client gives up on a waiting search =====================================
{
	my $rid = 'abandon-42-' . $$;
	# The breaker may still be open from the searches above: wait it out.
	sleep 1.2;
	my $before = scalar stub_requests();
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->port, Proto => 'tcp') or die $!;
	print {$s} "GET ${\ $t->path('/api/markets/search?q=abandoned+query')} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: $rid\r\n\r\n";
	ok($t->wait_until(10, sub { scalar(stub_requests()) > $before }), 'the abandoned search reached the stub');
	close $s;
	my $line = $t->access_line($rid);
	ok($line, 'the abandoned search is logged') or diag('no access line');
	if ($t->front eq 'nginx') {
		is($line && $line->{status}, 499, 'as 499, at once (not after the embedder timeout)');
		is(scalar(grep { ($_->{request_id} // '') eq $rid } $t->log_lines), 1, 'one access line for it');
	} else {
		# Apache (mod_proxy_fcgi and mod_fcgid alike) does not end the FastCGI
		# request when its client goes away: the app answers it when the
		# embedder times out, to nobody.
		is($line && $line->{status}, 503, 'Apache keeps the request open: answered 503 once the embedder timed out');
		is(scalar(grep { ($_->{request_id} // '') eq $rid && !defined $_->{msg} } $t->log_lines), 1, 'one access line for it');
	}
	my $health = $t->get('/healthz');
	is($health->{status}, 200, 'the worker serves on');
}

unlink "$stub_dir/hang";
$t->finish;
done_testing;
