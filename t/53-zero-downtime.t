#!/usr/bin/perl
# Restarts without a failed request, under 32 connections of steady load
# through nginx (t/lib/Markets/Load.pm counts every answer and every
# failed exchange):
#  (a) the binary upgrade, by the path `scripts/dev reload` takes
#      (`scripts/stack upgrade`: SIGUSR2; the new master takes the socket
#      over, the old one drains); a new binary that cannot start leaves
#      the old master serving, and the log says why;
#  (b) a restart under systemd-socket-activate: it creates the socket and
#      hands it over by LISTEN_FDS, as markets.socket does, and a holder
#      keeps it open while the app is stopped and started again, as PID 1
#      does, so that nginx's connections wait in the kernel's queue.
# Each runs twice. With no nginx retry at all and no kept-alive upstream
# connection (fastcgi_keep_conn off, fastcgi_next_upstream off), only the
# kernel's queue and the workers' drain keep every request whole, writes
# (POST) included. With the shipped nginx site, kept-alive upstream
# connections: a worker that drains answers on them and closes one only
# once it is idle (or nginx closes it after keepalive_requests), never
# right after an answer, when nginx may have just sent the next request
# on it: nginx would send that again only for the methods it deems
# idempotent. So that load has writes too. Every time: no answer but a
# 2xx, no connection error; the counts are printed.
# The service manager's side (NOTIFY_SOCKET) hears READY=1 from each
# master once its workers accept, and the hand-over of an upgrade
# (MAINPID= of the new master).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep);
use Markets::Load;
use Markets::Notify;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx apache-proxy)], "the master's binary upgrade and socket-activated restart: no master under mod_fcgid (t/54 upgrades the shared-hosting binary in place under load)");

plan skip_all => 'systemd-socket-activate is not installed (scripts/dev test installs systemd)'
	unless grep { -x "$_/systemd-socket-activate" } split /:/, $ENV{PATH};

# The service manager's notification socket: a datagram socket read here.
my $dir = tempdir(CLEANUP => 1);
my $notify = Markets::Notify->new("$dir/notify.sock");
my $notify_path = $notify->path;
sub hear { $notify->hear }
sub heard_ready_from { $notify->ready_from(@_) }

my $t = Markets::Test->new(services => [qw(mariadb memcached)],
	env => { MARKETS_RATE_LIMIT => '100000000/60', MARKETS_WORKERS => 2, NOTIFY_SOCKET => $notify_path });
my $root = $t->root;

# The app runs from a copy of the build, which the test replaces as a new
# build or package would: a new file renamed over the old one.
my $build = Markets::Test::build_dir();
mkdir "$root/bin" or die $!;
sub install_binary {
	my ($from) = @_;
	copy($from, "$root/bin/markets.new") or die "copy: $!";
	chmod 0755, "$root/bin/markets.new";
	rename "$root/bin/markets.new", "$root/bin/markets" or die "rename: $!";
}
install_binary("$build/markets");
copy("$build/markets-admin", "$root/bin/markets-admin") or die $!;
chmod 0755, "$root/bin/markets-admin";
$ENV{MARKETS_BUILD_DIR} = "$root/bin";
$t->start(qw(app nginx));

# A live process: not a zombie, nor gone by the time /proc is read.
sub alive {
	my ($pid) = @_;
	my ($state) = Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) (\S)/s;
	return kill(0, $pid) && defined $state && $state !~ /^[ZX]$/;
}

# What the load asks: reads of the health check, a list and a market, and
# with writes, new markets too.
my $created = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(sub => '51') }, 'Content-Type' => 'application/json' },
	content => encode_json({ name => 'Will the upgrade drop a request?' }) });
is($created->{status}, 201, 'a market to read') or diag($created->{content});
my $id = $created->{json}{data}{id};
my @reads = map { { method => 'GET', path => $_ } } ('/healthz', '/api/markets?limit=5', "/api/markets/$id");
my @writes = (@reads, { method => 'POST', path => '/api/markets', body => encode_json({ name => 'Load' }),
	headers => { %{ $t->bearer(sub => '52') }, 'Content-Type' => 'application/json' } });

# Runs $during under load; returns the load's totals after asserting them.
sub under_load {
	my ($name, $requests, $during) = @_;
	my $load = Markets::Load->start(port => $t->port, connections => 32, requests => $requests,
		status_file => "$root/load.status");
	my $more = sub { my $n = $load->answered + 300; $t->wait_until(60, sub { $load->answered >= $n }) };
	ok($more->(), "$name: the load is answered");
	$during->($more);
	my $r = $load->stop;
	diag(sprintf '%s: %d requests answered (%d 2xx, %d of them 201), %d non-2xx, %d connection errors, slowest %.0f ms',
		$name, $r->{answers}, $r->{ok}, $r->{statuses}{201} // 0, $r->{non_2xx}, $r->{errors}, $r->{max_ms});
	is($r->{non_2xx}, 0, "$name: no answer but a 2xx") or diag(explain($r->{statuses}), explain($r->{samples}));
	is($r->{errors}, 0, "$name: no connection error") or diag(explain($r->{error_kinds}), explain($r->{samples}));
	return $r;
}

# Switches nginx's upstream settings; returns once no old nginx worker is left.
# Behind Apache (apache-proxy) the site is the shipped one throughout
# (conf/apache-proxy-fcgi.conf: kept-alive connections, enablereuse=on, no
# retry), so both rounds run with it.
sub nginx_site {
	my (%set) = @_;
	return if $t->front ne 'nginx';
	my $conf = "$root/conf/nginx-markets.conf";
	my $text = Markets::Test::slurp($conf);
	for my $directive (sort keys %set) {
		$text =~ s/^(\s*\Q$directive\E) [^;]+;/$1 $set{$directive};/m or die "no $directive in $conf";
	}
	open my $fh, '>', $conf or die $!;
	print $fh $text;
	close $fh or die $!;
	my $nginx = $t->pid_of('nginx');
	my @old = grep { (Markets::Test::slurp("/proc/$_/stat") =~ /^\d+ \(.*?\) \S (\d+)/)[0] == $nginx }
		map { m{/proc/(\d+)/} ? $1 : () } glob '/proc/[0-9]*/stat';
	system('nginx', '-p', $root, '-c', "$root/conf/nginx.conf", '-e', "$root/log/nginx-error.log", '-s', 'reload') == 0
		or die 'nginx reload failed';
	$t->wait_until(30, sub { !grep { alive($_) } @old }) or die 'old nginx workers did not exit';
}
my %no_retry = (fastcgi_keep_conn => 'off', fastcgi_next_upstream => 'off');
my %shipped = (fastcgi_keep_conn => 'on', fastcgi_next_upstream => 'error');

my $master = $t->master_pid;
ok($t->wait_until(30, sub { heard_ready_from($master) }), 'READY=1 with MAINPID from the master once its workers accept');

# (a) The binary upgrade, as `scripts/dev reload` runs it.
sub upgrade {
	my ($name) = @_;
	my $old = $t->master_pid;
	ok($t->stack('upgrade', $root), "$name: scripts/stack upgrade succeeds");
	my $new = $t->master_pid;
	isnt($new, $old, "$name: the pid file names the new master");
	ok(!alive($old), "$name: the old master has drained and exited") or diag(Markets::Test::slurp("/proc/$old/stat"), `ps -o pid,ppid,stat,comm -p $old`);
	is(readlink("/proc/$new/exe"), "$root/bin/markets", "$name: the new master runs the new file");
	ok((grep { ($_->{MAINPID} // '') eq $new && ($_->{STATUS} // '') eq 'binary upgrade done' } hear()),
		"$name: the old master told the service manager the new MAINPID");
	return $new;
}

under_load('upgrade, shipped nginx site', \@writes, sub {
	my ($more) = @_;
	# A new binary that cannot start: the old master serves on, and says why.
	open my $fh, '>', "$dir/broken" or die $!;
	print $fh "#!/bin/sh\necho 'this build is broken' >&2\nexit 3\n";
	close $fh;
	install_binary("$dir/broken");
	ok(!$t->stack('upgrade', $root), 'a broken binary: scripts/stack upgrade fails');
	is($t->master_pid, $master, 'a broken binary: the pid file still names the old master');
	ok(alive($master), 'a broken binary: the old master serves on');
	ok((grep { /binary upgrade failed: the new master exited with status 3/ } $t->log_text_lines),
		'a broken binary: the log says why');
	ok((grep { ($_->{STATUS} // '') =~ /binary upgrade failed/ && ($_->{READY} // '') eq '1' } hear()),
		'a broken binary: the service manager hears the reload is over');
	ok($more->(), 'a broken binary: the load is still answered');
	# A new master that fails after its workers accept (it cannot write
	# the pid file): they drain, and the socket file stays the old one's.
	install_binary("$build/markets");
	my $pid_file = "$root/run/markets.pid";
	rename $pid_file, "$pid_file.keep" or die $!;
	mkdir $pid_file or die $!;
	kill 'USR2', $master;
	ok($t->wait_until(60, sub { grep { /"pid":$master,.*binary upgrade failed: the new master exited with status 1/ }
		$t->log_text_lines }), 'a new master that cannot write the pid file gives up');
	rmdir $pid_file or die $!;
	rename "$pid_file.keep", $pid_file or die $!;
	ok(-S $t->app_socket, 'and leaves the socket file alone');
	ok($more->(), 'the load is still answered');
	install_binary("$build/markets");
	my $new = upgrade('upgrade');
	ok($more->(), 'upgrade: the load is answered after it');
	my %workers = map { $_ => 1 } $t->worker_pids;
	ok((grep { $workers{ $_->{pid} } && defined $_->{status} } $t->log_lines),
		"upgrade: the new master's workers answer");
	$master = $new;
});

nginx_site(%no_retry);
under_load('upgrade, no nginx retry', \@writes, sub {
	my ($more) = @_;
	install_binary("$build/markets");
	$master = upgrade('upgrade without retries');
	ok($more->(), 'upgrade without retries: the load is answered after it');
});

# (b) Restarts under systemd-socket-activate. It execs its command in
# place once a connection comes, so the command is a holder that keeps
# the socket, as PID 1 keeps markets.socket's, and starts the app (with
# LISTEN_PID its pid) again whenever it exits.
my @argv = split /\0/, Markets::Test::slurp("/proc/$master/cmdline");
kill 'TERM', $master;
ok($t->wait_until(30, sub { !alive($master) }), 'the app stopped');
ok(!-e $t->app_socket, 'a master started by an upgrade removes the socket file its first predecessor made');
open my $holder_fh, '>', "$dir/holder.pl" or die $!;
print $holder_fh <<'PERL';
use strict; use warnings;
my ($child, $stop) = (0, 0);
$SIG{TERM} = sub { $stop = 1; kill 'TERM', $child if $child };
until ($stop) {
	$child = fork // die "fork: $!";
	if (!$child) { $ENV{LISTEN_PID} = $$; exec @ARGV or die "exec: $!" }
	waitpid($child, 0);
	print STDERR "holder: the app exited with status $?\n";
	$child = 0;
}
PERL
close $holder_fh;
my %env = ($t->_stack_env, PATH => $ENV{PATH});
my $activator = fork // die "fork: $!";
if (!$activator) {
	open STDOUT, '>>', "$root/log/activate.out" or die $!;
	open STDERR, '>&', \*STDOUT or die $!;
	open STDIN, '<', '/dev/null' or die $!;
	exec 'systemd-socket-activate', '-l', $t->app_socket, '--fdname=markets.socket',
		(map { ('-E', "$_=$env{$_}") } sort keys %env), $^X, "$dir/holder.pl", @argv
		or die "exec: $!";
}
ok($t->wait_until(10, sub { -S $t->app_socket }), 'systemd-socket-activate listens');
my $socket_inode = (stat $t->app_socket)[1];
is($t->get('/healthz')->{status}, 200, 'the first request starts the app, and is answered');
$master = $t->master_pid;
ok($t->wait_until(30, sub { heard_ready_from($master) }), 'READY=1 from the socket-activated master');

sub restart {
	my ($name, $more) = @_;
	my $old = $t->master_pid;
	my $stops = grep { ($_->{STOPPING} // '') eq '1' } hear();
	kill 'TERM', $old;
	my $new;
	ok($t->wait_until(60, sub { $new = $t->master_pid; $new && $new ne $old && alive($new) && heard_ready_from($new) }),
		"$name: a new master accepts");
	is(scalar(grep { ($_->{STOPPING} // '') eq '1' } hear()), $stops + 1, "$name: STOPPING=1 from the old one");
	ok($more->(), "$name: the load is answered after it");
}

under_load('restart under socket activation, no nginx retry', \@writes, sub {
	my ($more) = @_;
	restart("restart $_ without retries", $more) for 1 .. 2;
});
nginx_site(%shipped);
under_load('restart under socket activation, shipped nginx site', \@writes, sub {
	my ($more) = @_;
	restart("restart $_", $more) for 1 .. 2;
});
is((stat $t->app_socket)[1], $socket_inode, 'the socket file stayed the same through the restarts');

kill 'TERM', $activator;
waitpid($activator, 0);
$t->finish;
done_testing;
