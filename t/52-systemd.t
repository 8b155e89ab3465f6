#!/usr/bin/perl
# The server under systemd, without PID 1: conf/systemd's units pass
# `systemd-analyze verify` with nothing to say (in a root that holds the
# installed paths they name); the master takes its socket from
# LISTEN_FDS (here from systemd-socket-activate, on TCP: the first
# connection starts the app, with no --listen at all, as markets.service
# runs it) and leaves it alone otherwise (LISTEN_PID another process's);
# it refuses two sockets, or a passed descriptor that is not a listening
# socket; and it tells NOTIFY_SOCKET READY=1 once its workers accept,
# RELOADING=1 then READY=1 around SIGHUP (a refused one too), STOPPING=1
# on SIGTERM.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Fcntl qw(F_SETFD);
use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::FastCGI;
use Markets::Notify;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], 'front-independent: the units and the master under systemd, spoken to on its socket with no front');

my $repo = Markets::Test::repo();
my $bin = Markets::Test::build_dir() . '/markets';
my $dir = tempdir(CLEANUP => 1);
local $SIG{PIPE} = 'IGNORE';
sub slurp { Markets::Test::slurp(@_) }
sub wait_for { my ($secs, $cond) = @_; my $end = time + $secs; my $v; sleep 0.05 until ($v = $cond->()) || time > $end; $v }
my ($analyze, $activate) = map { my $n = $_; my ($d) = grep { -x "$_/$n" } split /:/, $ENV{PATH}; $d && "$d/$n" }
	qw(systemd-analyze systemd-socket-activate);
plan skip_all => 'systemd-analyze and systemd-socket-activate are not installed (scripts/dev test installs systemd)'
	unless $analyze && $activate;

# --- the units -------------------------------------------------------------
{
	# A root with what the units name: the binary, kill, systemd's own units.
	my $root = "$dir/root";
	make_path("$root/usr/sbin", "$root/usr/bin", "$root/etc/systemd/system", "$root/usr/lib/systemd");
	symlink 'usr/bin', "$root/bin" or die $!;
	system('cp', '-a', '/usr/lib/systemd/system', "$root/usr/lib/systemd/") == 0 or die 'cp';
	copy($bin, "$root/usr/sbin/markets") && chmod(0755, "$root/usr/sbin/markets") or die $!;
	copy('/usr/bin/kill', "$root/usr/bin/kill") && chmod(0755, "$root/usr/bin/kill") or die $!;
	copy("$repo/conf/systemd/$_", "$root/etc/systemd/system/$_") or die $! for qw(markets.service markets.socket);
	my $out = `"$analyze" verify --man=no --root="$root" markets.socket markets.service 2>&1`;
	is($?, 0, 'systemd-analyze verify exits 0');
	is($out, '', 'systemd-analyze verify has nothing to say about either unit');
	my $service = slurp("$repo/conf/systemd/markets.service");
	my $socket = slurp("$repo/conf/systemd/markets.socket");
	like($service, qr{^Type=notify$}m, 'the service is Type=notify');
	my ($path) = $socket =~ m{^ListenStream=(/\S+)$}m;
	like(slurp("$repo/conf/nginx-markets.conf"), qr{server unix:\Q$path\E;}, "nginx's site connects to the socket's $path");
}

# The notification socket, as the service manager's.
my $notify = Markets::Notify->new("$dir/notify.sock");
my $notify_path = $notify->path;
sub hear { $notify->hear }
sub heard { $notify->heard(@_) }

# Starts @cmd with its log and stderr in files; returns { pid, log }.
my $n = 0;
sub start_app {
	my (%a) = @_;
	$n++;
	my $log = "$dir/app-$n.log";
	my $conf = "$dir/app-$n.conf";
	open my $fh, '>', $conf or die $!;
	print $fh "cursor_secret = systemd-test-cursor-secret-0123456789abcdef\nworkers = 2\nlog_file = $log\n";
	close $fh;
	my @app = ($bin, '--config', $conf, @{ $a{args} || [] });
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		$ENV{NOTIFY_SOCKET} = $notify_path;
		$ENV{$_} = $a{env}{$_} for keys %{ $a{env} || {} };
		$ENV{ASAN_OPTIONS} = join ':', grep { length } ($ENV{ASAN_OPTIONS} // ''), "log_path=$dir/sanitizer";
		$ENV{UBSAN_OPTIONS} = join ':', grep { length } ($ENV{UBSAN_OPTIONS} // ''), "log_path=$dir/sanitizer";
		open STDOUT, '>>', "$log.out" or die $!;
		open STDERR, '>>', "$log.out" or die $!;
		open STDIN, '<', '/dev/null' or die $!;
		$a{before_exec}->() if $a{before_exec};
		exec @{ $a{wrap} || [] }, @app or die "exec: $!";
	}
	return { pid => $pid, log => $log, conf => $conf };
}
sub exited { my ($app) = @_; return wait_for(30, sub { waitpid($app->{pid}, WNOHANG) > 0 }) }

sub healthz {
	my ($port) = @_;
	my $c = Markets::FastCGI->connect_tcp('127.0.0.1', $port);
	$c->send_bytes(Markets::FastCGI::request_bytes());
	my $r = $c->read_response(id => 1, timeout => 30);
	$c->close;
	return Markets::FastCGI::parse_cgi($r->{stdout})->{status};
}

# --- a TCP socket from systemd-socket-activate, no --listen -----------------
{
	my $port = Markets::Test::free_port();
	my @pass = map { ('-E', "$_=" . ($_ eq 'NOTIFY_SOCKET' ? $notify_path : $ENV{$_} // '')) }
		qw(NOTIFY_SOCKET ASAN_OPTIONS UBSAN_OPTIONS);
	my $app = start_app(wrap => [$activate, '-l', "127.0.0.1:$port", '--fdname=markets.socket', @pass]);
	ok(wait_for(10, sub { slurp("$app->{log}.out") =~ /Listening on/ }), 'systemd-socket-activate listens');
	is(healthz($port), 200, 'the first connection starts the app, which answers it');
	like(slurp($app->{log}), qr/listening on 127\.0\.0\.1:$port \(passed in\) with 2 workers/, 'the log names the passed socket');
	ok(wait_for(10, sub { heard(MAINPID => $app->{pid}) && heard(READY => 1) }), 'READY=1, MAINPID= the master');
	my ($ready) = heard(MAINPID => $app->{pid});
	like($ready->{STATUS} // '', qr/generation 0: 2 workers accept/, 'once its two workers accept');

	# SIGHUP: RELOADING=1, then READY=1 once the new generation accepts.
	kill 'HUP', $app->{pid};
	ok(wait_for(10, sub { grep { ($_->{STATUS} // '') =~ /generation 1: 2 workers accept/ } hear() }),
		'SIGHUP: READY=1 once the new generation accepts');
	my @seq = map { $_->{RELOADING} ? 'RELOADING' : $_->{READY} ? 'READY' : '?' } hear();
	is_deeply(\@seq, [qw(READY RELOADING READY)], 'in order: READY, RELOADING, READY');
	ok((grep { $_->{MONOTONIC_USEC} } heard(RELOADING => 1)), 'RELOADING=1 carries MONOTONIC_USEC');
	# A refused reload ends the same way.
	open my $fh, '>>', $app->{conf} or die $!;
	print $fh "workers = lots\n";
	close $fh;
	kill 'HUP', $app->{pid};
	ok(wait_for(10, sub { grep { ($_->{STATUS} // '') =~ /reload refused/ && $_->{READY} } hear() }),
		'a refused SIGHUP: READY=1 with the status');
	is(scalar heard(RELOADING => 1), 2, 'after its RELOADING=1');
	is(healthz($port), 200, 'served on');
	kill 'TERM', $app->{pid};
	ok(exited($app), 'SIGTERM: the master exits');
	is($? >> 8, 0, 'with status 0');
	is(scalar heard(STOPPING => 1), 1, 'STOPPING=1');
}

# --- what the master refuses to take --------------------------------------
{
	my @two = map { ('-l', '127.0.0.1:' . Markets::Test::free_port()) } 1 .. 2;
	my $app = start_app(wrap => [$activate, @two, '-E', "ASAN_OPTIONS=$ENV{ASAN_OPTIONS}"]);
	my $port = ($two[1] =~ /:(\d+)$/)[0];
	ok(wait_for(10, sub { slurp("$app->{log}.out") =~ /Listening on.*Listening on/s }), 'two sockets passed');
	my $c = eval { Markets::FastCGI->connect_tcp('127.0.0.1', $port) };
	ok(exited($app), 'two sockets: the app exits');
	isnt($? >> 8, 0, 'two sockets: with a failure status');
	like(slurp("$app->{log}.out"), qr/passed more than one listening socket \(fds 3 and 4\); markets serves one/,
		'two sockets: it says why');
}
{
	# fd 3 a file, LISTEN_FDS=1 for this very process (exec keeps the pid).
	open my $file, '<', $bin or die $!;
	my $app = start_app(before_exec => sub {
		POSIX::dup2(fileno $file, 3) or die "dup2: $!";
		open my $three, '<&=', 3 or die "fd 3: $!";
		fcntl($three, F_SETFD, 0) or die "fcntl: $!";
		@ENV{qw(LISTEN_FDS LISTEN_PID)} = (1, $$);
	}, args => ['--listen', "unix:$dir/never.sock"]);
	ok(exited($app), 'a passed file: the app exits');
	isnt($? >> 8, 0, 'a passed file: with a failure status');
	like(slurp("$app->{log}.out"), qr/passed fd 3 \(unknown\) is not a listening socket/, 'a passed file: it says why')
		or diag(slurp("$app->{log}.out"));
	ok(!-e "$dir/never.sock", 'a passed file: nothing bound instead');
}
{
	# LISTEN_PID another process's: not ours; --listen binds as always.
	my $app = start_app(env => { LISTEN_FDS => 1, LISTEN_PID => 1 }, args => ['--listen', "unix:$dir/own.sock"]);
	ok(wait_for(30, sub { slurp($app->{log}) =~ /listening on unix:\Q$dir\E\/own\.sock with/ }),
		"LISTEN_PID another process's: the master binds its --listen");
	kill 'TERM', $app->{pid};
	ok(exited($app), 'and stops');
	ok(!-e "$dir/own.sock", 'removing the socket file it made');
}

my @reports = glob("$dir/sanitizer.*");
ok(!@reports, 'no ASan/UBSan report') or diag(map { slurp($_) } @reports);
done_testing;
