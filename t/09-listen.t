#!/usr/bin/perl
# The TCP listener as a trust boundary. Whoever connects to the FastCGI
# socket sets REMOTE_ADDR (believed by /metrics and the rate limiter), so:
# `--listen :PORT` and `--listen PORT` bind 127.0.0.1, not every
# interface; a TCP listener serves only the peers in listen_allowed_clients
# or FCGI_WEB_SERVER_ADDRS (loopback ones when neither is set) and closes
# others unanswered, logging the address — once a second at most, with a
# count of the rest; a non-loopback address with no list refuses to start;
# the mod_fcgid path (a TCP socket on fd 0) is checked the same way.
# Addresses outside loopback are only ever configured, never connected to.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

use Markets::FastCGI;
Markets::Test::fronts_only(['nginx'],
	"it runs the markets binary on sockets of its own (the mod_fcgid fd-0 case included) and starts no front, so every front would run the same test");

my $bin = Markets::Test::build_dir() . '/markets';
my $dir = tempdir(CLEANUP => 1);
my $CURSOR = 'listen-test-cursor-secret-0123456789abcdef';
local $SIG{PIPE} = 'IGNORE';

sub slurp { my ($path) = @_; open my $fh, '<', $path or return ''; local $/; my $t = <$fh>; return $t // '' }

# Starts the app (foreground master, or a lone worker on fd 0 when $a{fd0}
# is a listening socket) with the settings in $a{conf} and $a{env}; its log
# and stderr go to a file of its own. Returns { pid, log }.
my $n = 0;
sub start_app {
	my (%a) = @_;
	$n++;
	my $log = "$dir/app-$n.log";
	my $conf = "$dir/app-$n.conf";
	open my $fh, '>', $conf or die $!;
	print $fh "cursor_secret = $CURSOR\nworkers = 1\nlog_file = $log\n", $a{conf} // '';
	close $fh;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$ENV{$_} = $a{env}{$_} for keys %{ $a{env} || {} };
		$ENV{ASAN_OPTIONS} = join ':', grep { length } ($ENV{ASAN_OPTIONS} // ''), "log_path=$dir/sanitizer";
		$ENV{UBSAN_OPTIONS} = join ':', grep { length } ($ENV{UBSAN_OPTIONS} // ''), "log_path=$dir/sanitizer";
		open STDOUT, '>>', "$log.out" or die $!;
		open STDERR, '>>', "$log.out" or die $!;
		if ($a{fd0}) {
			open STDIN, '<&', $a{fd0} or die "dup: $!";
			exec $bin, '--config', $conf or die "exec: $!";
		}
		open STDIN, '<', '/dev/null' or die $!;
		exec $bin, '--config', $conf, '--listen', $a{listen} or die "exec: $!";
	}
	return { pid => $pid, log => $log };
}

sub wait_for { my ($secs, $cond) = @_; my $end = time + $secs; my $v; sleep 0.05 until ($v = $cond->()) || time > $end; $v }

# Waits for the master's "listening on" line (or the exit of a failed start).
sub started {
	my ($app) = @_;
	return wait_for(30, sub { slurp($app->{log}) =~ /listening on/ || waitpid($app->{pid}, WNOHANG) > 0 });
}

sub stop_app {
	my ($app) = @_;
	kill 'TERM', $app->{pid};
	my $gone = wait_for(30, sub { waitpid($app->{pid}, WNOHANG) > 0 });
	ok($gone, 'the app stops on SIGTERM') or kill 'KILL', $app->{pid};
}

# One GET /healthz over TCP; returns { status, eof, records, stdout }.
sub healthz {
	my ($port) = @_;
	my $c = Markets::FastCGI->connect_tcp('127.0.0.1', $port);
	$c->send_bytes(Markets::FastCGI::request_bytes());
	my $r = $c->read_response(id => 1, timeout => 20);
	$c->close;
	return { %{ Markets::FastCGI::parse_cgi($r->{stdout}) }, eof => $r->{eof}, records => scalar @{ $r->{records} },
		stdout => $r->{stdout} };
}

sub served {
	my ($port, $name) = @_;
	my $r = healthz($port);
	is($r->{status}, 200, "$name: served (200)") or diag(explain($r));
}

sub refused {
	my ($port, $name) = @_;
	my $r = healthz($port);
	ok($r->{eof} && $r->{records} == 0 && $r->{stdout} eq '', "$name: closed without an answer")
		or diag(explain($r));
}

# The refusal lines of a log: [address, count of the ones left out].
sub refusals {
	my ($log) = @_;
	my $text = slurp($log);
	my @out;
	push @out, [$1, $2 // 0] while $text =~ /"refused a FastCGI connection from (\S+) \([^)]*\)(?:; (\d+) more refused)?/g;
	return @out;
}

# The listening sockets on port, from /proc/net/tcp: local addresses in hex.
sub listening_on {
	my ($port) = @_;
	my $hex = sprintf '%04X', $port;
	return map { (split ' ', $_)[1] } grep { (split ' ', $_)[3] eq '0A' && (split ' ', $_)[1] =~ /:$hex$/ }
		split /\n/, slurp('/proc/net/tcp');
}

# --- `--listen :PORT` and `--listen PORT` bind loopback --------------------
for my $form (':%d', '%d') {
	my $port = Markets::Test::free_port();
	my $spec = sprintf $form, $port;
	my $app = start_app(listen => $spec);
	ok(started($app), "--listen $spec: started") or diag(slurp("$app->{log}.out"));
	my @addr = listening_on($port);
	is_deeply(\@addr, [sprintf('0100007F:%04X', $port)], "--listen $spec: bound to 127.0.0.1 only (/proc/net/tcp)");
	served($port, "--listen $spec, no list: a loopback peer");
	stop_app($app);
}

# --- an allow list that leaves loopback out --------------------------------
{
	my $port = Markets::Test::free_port();
	my $app = start_app(listen => "127.0.0.1:$port", conf => "listen_allowed_clients = 10.0.0.0/8, 192.0.2.7\n");
	ok(started($app), 'listen_allowed_clients = 10.0.0.0/8: started') or diag(slurp("$app->{log}.out"));
	refused($port, 'a loopback peer outside listen_allowed_clients');
	my @lines = refusals($app->{log});
	is(scalar @lines, 1, 'one refusal logged');
	is($lines[0][0], '127.0.0.1', 'the log line names the peer') if @lines;
	# A burst: every refusal is either a line of its own or counted in the
	# next line, written at most once a second; after a pause, the next
	# refusal is logged and carries the count of those left out.
	my $burst = 30;
	refused($port, "burst $_ of $burst") for 1 .. $burst;
	sleep 1.1;
	refused($port, 'one more after a pause');
	@lines = refusals($app->{log});
	my $accounted = 0;
	$accounted += 1 + $_->[1] for @lines;
	is($accounted, $burst + 2, 'every refused connection is logged or counted in the next line');
	cmp_ok(scalar @lines, '<=', $burst + 2, 'no more lines than refusals');
	diag(sprintf '%d refusals in %d log lines', $burst + 2, scalar @lines);
	ok(!grep({ $_->[0] ne '127.0.0.1' } @lines), 'every line names 127.0.0.1');
	stop_app($app);
}

# --- loopback allowed: served ------------------------------------------------
{
	my $port = Markets::Test::free_port();
	my $app = start_app(listen => "127.0.0.1:$port", conf => "listen_allowed_clients = 10.0.0.0/8, 127.0.0.1\n");
	ok(started($app), 'listen_allowed_clients with 127.0.0.1: started');
	served($port, 'a loopback peer in listen_allowed_clients');
	is(scalar(refusals($app->{log})), 0, 'no refusal logged');
	stop_app($app);
}

# --- FCGI_WEB_SERVER_ADDRS (libfcgi's convention) ---------------------------
for my $case (['10.1.2.3,10.1.2.4', 0], ['10.1.2.3,127.0.0.1', 1]) {
	my ($addrs, $ok) = @$case;
	my $port = Markets::Test::free_port();
	my $app = start_app(listen => "127.0.0.1:$port", env => { FCGI_WEB_SERVER_ADDRS => $addrs });
	ok(started($app), "FCGI_WEB_SERVER_ADDRS=$addrs: started");
	if ($ok) { served($port, "FCGI_WEB_SERVER_ADDRS=$addrs") }
	else {
		refused($port, "FCGI_WEB_SERVER_ADDRS=$addrs");
		is((refusals($app->{log}))[0][0], '127.0.0.1', "FCGI_WEB_SERVER_ADDRS=$addrs: the refusal is logged with the peer");
	}
	stop_app($app);
}

# --- start-up refusals ----------------------------------------------------------
{
	my $port = Markets::Test::free_port();
	my $app = start_app(listen => "0.0.0.0:$port");
	ok(wait_for(30, sub { waitpid($app->{pid}, WNOHANG) > 0 }), '0.0.0.0 with no allow list: the app exits');
	is($? >> 8, 1, 'with status 1');
	like(slurp($app->{log}), qr/listening on 0\.0\.0\.0 \(not loopback\) with no allowed clients: set listen_allowed_clients \(or the environment's FCGI_WEB_SERVER_ADDRS\)/,
		'the log names both settings');
	is_deeply([listening_on($port)], [], 'nothing listens on the port');

	$app = start_app(listen => "127.0.0.1:$port", env => { FCGI_WEB_SERVER_ADDRS => '10.1.2.3,frontend' });
	ok(wait_for(30, sub { waitpid($app->{pid}, WNOHANG) > 0 }), 'a bad FCGI_WEB_SERVER_ADDRS: the app exits');
	is($? >> 8, 1, 'with status 1');
	like(slurp($app->{log}), qr/environment FCGI_WEB_SERVER_ADDRS: 'frontend' is not an address/, 'naming the entry');

	local %ENV = (%ENV, MARKETS_CURSOR_SECRET => $CURSOR, MARKETS_LISTEN_ALLOWED_CLIENTS => '10.0.0.0/33');
	open my $fh, '>', "$dir/empty.conf" or die $!;
	close $fh;
	my $out = `'$bin' --config '$dir/empty.conf' --test-config 2>&1`;
	is($? >> 8, 1, 'a bad listen_allowed_clients: --test-config exits 1');
	like($out, qr/MARKETS_LISTEN_ALLOWED_CLIENTS: '10\.0\.0\.0\/33' is not an address/, 'naming the entry') or diag($out);
}

# --- mod_fcgid's way: a TCP listening socket on fd 0 --------------------------
for my $case (['10.0.0.0/8', 0], ['127.0.0.0/8', 1]) {
	my ($allowed, $ok) = @$case;
	my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16, ReuseAddr => 1, Proto => 'tcp')
		or die "listen: $!";
	my $port = $listener->sockport;
	my $app = start_app(fd0 => $listener, conf => "listen_allowed_clients = $allowed\n");
	close $listener;
	if ($ok) { served($port, "fd 0 TCP socket, listen_allowed_clients = $allowed") }
	else {
		refused($port, "fd 0 TCP socket, listen_allowed_clients = $allowed");
		ok(wait_for(10, sub { scalar refusals($app->{log}) }), 'fd 0: the refusal is logged');
	}
	stop_app($app);
}

my @reports = glob("$dir/sanitizer.*");
ok(!@reports, 'no ASan/UBSan report') or diag(map { "--- $_\n" . slurp($_) } @reports);
done_testing;
