#!/usr/bin/perl
# The Debian package, as an operator meets it: `dpkg-buildpackage -us -uc
# -b` builds markets_*.deb from a copy of the tree (its files under
# version control, so no var/ or build directory leaks in), lintian finds
# no error in it, and `dpkg -i` installs it: a markets system account,
# sbin/markets, the man pages, /usr/share/markets/sql, the conffile
# /etc/markets/markets.conf readable by that account only, and a postinst
# that leaves the database alone and prints the migrate command.
# Installed again, as an upgrade is, it keeps the changed conffile. As
# the account, against the test stack's MariaDB, `markets --test-config`
# passes and `markets-admin migrate --status` finds the installed
# migrations without --dir; the installed master serves /readyz, and
# logrotate's file rotates its log and has it reopened (SIGUSR1 through
# /run/markets/markets.pid, as where no systemd runs). `dpkg --purge`
# then removes the changed conffile and the logs, and nothing of the
# account runs. The END block puts the machine back as it was found, even
# after a failure: the package purged, a master it started stopped, the
# account removed when the test created it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], 'front-independent: it builds and installs the Debian package; its master runs behind no front');
use Markets::FastCGI;

sub on_path { my ($cmd) = @_; return grep { -x "$_/$cmd" } split /:/, $ENV{PATH} }
sub installed { `dpkg-query -W -f='\${Status}' markets 2>/dev/null` =~ /install ok installed|config-files/ }

plan skip_all => 'needs root: it installs and purges a package' unless $> == 0;
plan skip_all => 'dpkg-buildpackage is missing (scripts/dev test installs dpkg-dev and debhelper)'
	unless on_path('dpkg-buildpackage');
# Never replace a markets package someone installed on this machine.
plan skip_all => 'a markets package is installed here; this test would replace it' if installed();

my $repo = Markets::Test::repo();
my $work = tempdir('markets-package-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{MARKETS_KEEP_TMP});
my $RUN = '/run/markets';
my $LOG = '/var/log/markets';
my $CONF = '/etc/markets/markets.conf';
my $had_user = defined getpwnam('markets');
my $had_run = -e $RUN;
my $master;    # the installed master this test started, by pid

sub shq { my $s = shift; $s =~ s/'/'\\''/g; "'$s'" }
sub slurp { Markets::Test::slurp(@_) }
sub spew { my ($path, $text) = @_; open my $fh, '>', $path or die "$path: $!"; print $fh $text; close $fh or die "$path: $!" }

# run(COMMAND): (exit status, stdout and stderr).
sub run {
	my ($cmd) = @_;
	my $out = `( $cmd ) 2>&1`;
	return ($? >> 8, $out);
}

# as_markets(COMMAND...): the same, as the markets account, in a clean
# environment (no MARKETS_* of the test's own).
sub as_markets {
	return run(join ' ', 'setpriv --reuid=markets --regid=markets --init-groups',
		'env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin', map { shq($_) } @_);
}

# Processes of the markets account still alive (not zombies).
sub markets_processes {
	my $uid = getpwnam('markets') // return ();
	my @pids;
	for my $status (glob '/proc/[0-9]*/status') {
		my $text = slurp($status) or next;
		my ($ruid) = $text =~ /^Uid:\s+(\d+)/m or next;
		next if $text =~ /^State:\s+Z/m;
		push @pids, $status =~ m{/proc/(\d+)/} if $ruid == $uid;
	}
	return @pids;
}

# Polls cond every 50 ms for up to secs seconds; returns its last value.
sub wait_for {
	my ($secs, $cond) = @_;
	my $deadline = time + $secs;
	my $v;
	while (!($v = $cond->()) && time < $deadline) { sleep 0.05 }
	return $v;
}

# SIGTERM to the master this test started; SIGKILL after 30 s.
sub stop_master {
	return unless $master;
	kill 'TERM', $master;
	kill 'KILL', $master unless wait_for(30, sub { waitpid($master, POSIX::WNOHANG()) == $master });
	waitpid($master, 0);
	undef $master;
}

# The machine as it was found, whatever happened above.
END {
	local $?;
	# A run that skipped (another front, a package already installed) got
	# no further than the skip: the machine is as it found it, and a
	# markets account, package or master there belong to someone else —
	# perhaps this very test, running meanwhile for the default front.
	return unless $> == 0 && defined $had_user;
	stop_master();
	kill 'KILL', markets_processes() if !$had_user;
	system('dpkg --purge markets >/dev/null 2>&1') if installed();
	system('rm', '-rf', $RUN) if !$had_run && -e $RUN;
	system('deluser --system --quiet markets >/dev/null 2>&1') if !$had_user && defined getpwnam('markets');
	system('delgroup --system --quiet markets >/dev/null 2>&1') if !$had_user && defined getgrnam('markets');
}

# The test stack's MariaDB, where the markets account may reach its socket.
my $t = Markets::Test->new(services => [qw(mariadb)]);
my $root = $t->root;
chmod 0755, $root, "$root/run";
my ($db_password) = slurp("$root/db.conf") =~ /^db_password = (\S+)$/m;

# A copy of the tree: what version control holds (and new files not yet
# added), never var/ or a build directory.
my $src = "$work/markets";
mkdir $src or die $!;
my ($rc, $out) = run("git -C ${\ shq($repo)} ls-files -z -c -o --exclude-standard"
	. " | tar -C ${\ shq($repo)} --null -T - -cf - | tar -C ${\ shq($src)} -xf -");
is($rc, 0, 'the tree is copied out of the work tree') or diag($out);
ok(!-e "$src/var" && -f "$src/debian/control", 'with debian/ and without var/');

my $started = time;
($rc, $out) = run("cd ${\ shq($src)} && DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b");
spew("$work/build.log", $out);
is($rc, 0, 'dpkg-buildpackage -us -uc -b') or diag(join "\n", (split /\n/, $out)[-40 .. -1]);
diag(sprintf 'package built in %.0f s', time - $started);
my @debs = glob "$work/markets_*.deb";
is(scalar @debs, 1, 'it made one markets_*.deb') or diag(`ls $work`);
my $deb = $debs[0];
unless ($deb) { $t->finish; done_testing; exit }

SKIP: {
	skip 'lintian is not installed (scripts/dev test installs it)', 1 unless on_path('lintian');
	($rc, $out) = run("lintian --fail-on error ${\ shq($deb)}");
	is($rc, 0, 'lintian finds no error') or diag($out);
	diag("lintian: $_") for grep { /^[EW]:/ } split /\n/, $out;
}

($rc, $out) = run("dpkg -i ${\ shq($deb)}");
is($rc, 0, 'dpkg -i installs it') or diag($out);
like($out, qr{markets-admin --config /etc/markets/markets\.conf migrate --status}, 'postinst prints the migrate command');

# The account, the files, the conffile.
my @pw = getpwnam('markets');
ok(@pw, 'a markets account exists');
cmp_ok($pw[2] // 1000, '<', 1000, 'a system account (uid below 1000)');
is($pw[8], '/usr/sbin/nologin', 'with no login shell');
ok(defined getgrnam('markets'), 'and a markets group');
ok(-x "/usr/sbin/markets", '/usr/sbin/markets');
ok(-x "/usr/bin/markets-admin", '/usr/bin/markets-admin');
ok(-f "/usr/share/man/$_.gz", "man page $_") for qw(man8/markets.8 man8/markets-admin.8 man5/markets.conf.5);
my @shipped = map { s{^.*/}{}r } sort glob "$repo/sql/*.sql";
is_deeply([map { s{^.*/}{}r } sort glob '/usr/share/markets/sql/*.sql'], \@shipped, '/usr/share/markets/sql/ holds every migration');
ok(-f '/usr/share/markets/sql/seed/demo.sql', 'and the seed');
ok(-f "/lib/systemd/system/markets.$_", "/lib/systemd/system/markets.$_") for qw(service socket);
ok(-f '/etc/logrotate.d/markets', '/etc/logrotate.d/markets');
like(`dpkg-query -W -f='\${Conffiles}' markets`, qr{^\s*/etc/markets/markets\.conf [0-9a-f]{32}$}m, "$CONF is a conffile");
is(slurp($CONF), slurp("$repo/conf/markets.conf"), 'as conf/markets.conf ships it');
my @st = stat $CONF;
is(sprintf('%04o %s %s', $st[2] & 07777, scalar getpwuid($st[4]), scalar getgrgid($st[5])), '0640 root markets',
	'mode 0640, root:markets: the account reads it, others do not');
@st = stat $LOG;
is(sprintf('%04o %s', $st[2] & 07777, scalar getpwuid($st[4])), '2750 markets', "$LOG belongs to the account");

# The operator's settings: the test stack's database, through the
# application's own account (data rights only).
spew($CONF, slurp($CONF) . <<"CONF");
# The test's settings (t/50-package.t).
db_socket = $root/run/mysql.sock
db_user = markets
db_password = $db_password
db_name = markets
cursor_secret = package-test-cursor-secret-0123456789abcdef
log_file = $LOG/markets.log
workers = 2
job_runners = 0
CONF

# Installing the package again (as an upgrade does) keeps them.
my $changed = slurp($CONF);
($rc, $out) = run("dpkg -i ${\ shq($deb)}");
is($rc, 0, 'dpkg -i again') or diag($out);
is(slurp($CONF), $changed, 'keeps the changed markets.conf');
@st = stat $CONF;
is(sprintf('%04o', $st[2] & 07777), '0640', 'and its mode');

($rc, $out) = as_markets('/usr/sbin/markets', '--config', $CONF, '--test-config');
is($rc, 0, 'as markets: markets --test-config passes') or diag($out);
like($out, qr/configuration ok/, 'and says so');
($rc, $out) = run("setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/markets --config $CONF --test-config");
is($rc, 1, 'as nobody it cannot read the configuration');
like($out, qr/Permission denied/, 'and says why');

($rc, $out) = as_markets('/usr/bin/markets-admin', '--config', $CONF, 'migrate', '--status');
is($rc, 0, 'as markets: markets-admin migrate --status, without --dir, exits 0') or diag($out);
like($out, qr/^applied\s+\Q$_\E\s/m, "it reads /usr/share/markets/sql: $_ applied") for @shipped;
unlike($out, qr/^pending/m, 'nothing pending');

# The installed master, as the account, with the pid file logrotate reads.
SKIP: {
	skip "$RUN exists already: another markets owns it", 9 if $had_run;
	skip 'logrotate is not installed (scripts/dev test installs it)', 9 unless on_path('logrotate');
	mkdir $RUN or die "$RUN: $!";
	chown scalar getpwnam('markets'), scalar getgrnam('markets'), $RUN;
	$master = fork // die "fork: $!";
	if ($master == 0) {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$work/master.out";
		open STDERR, '>&', \*STDOUT;
		exec('setpriv', '--reuid=markets', '--regid=markets', '--init-groups', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
			'/usr/sbin/markets', '--config', $CONF, '--listen', "unix:$RUN/markets.sock", '--pid-file', "$RUN/markets.pid")
			or _exit(127);
	}
	ok(wait_for(30, sub { -S "$RUN/markets.sock" && -s "$RUN/markets.pid" && -s "$LOG/markets.log" }),
		'the installed master starts as markets: socket, pid file, log') or diag(slurp("$work/master.out"));
	is(slurp("$RUN/markets.pid") =~ s/\s+$//r, $master, 'the pid file names it');
	my $r = Markets::FastCGI->simple("$RUN/markets.sock", params => { REQUEST_URI => '/readyz' });
	is($r->{status}, 200, 'it serves /readyz: the database answers the account') or diag($r->{body});

	($rc, $out) = run("logrotate --force --state ${\ shq(\"$work/logrotate.state\")} /etc/logrotate.d/markets");
	is($rc, 0, 'logrotate --force with /etc/logrotate.d/markets') or diag($out);
	ok(-s "$LOG/markets.log.1", 'the log was moved to markets.log.1');
	# Each process's log descriptor follows SIGUSR1 to the new file.
	my $reopened = wait_for(10, sub {
		my @targets = map { readlink($_) // '' } map { glob "/proc/$_/fd/*" } markets_processes();
		(grep { $_ eq "$LOG/markets.log" } @targets) && !(grep { $_ eq "$LOG/markets.log.1" } @targets);
	});
	ok($reopened, 'the master and its workers reopened markets.log (SIGUSR1 from postrotate)');
	my $rid = 'package-test-after-rotate';
	Markets::FastCGI->simple("$RUN/markets.sock", params => { REQUEST_URI => '/healthz', HTTP_X_REQUEST_ID => $rid });
	ok(wait_for(5, sub { slurp("$LOG/markets.log") =~ /\Q$rid\E/ }), 'a request after the rotation is logged in the new file');
	@st = stat "$LOG/markets.log";
	is(scalar getpwuid($st[4] // 0), 'markets', 'which belongs to the account');
	stop_master();
	ok(!markets_processes(), 'the master and its workers stopped');
}

($rc, $out) = run('dpkg --purge markets');
is($rc, 0, 'dpkg --purge markets') or diag($out);
ok(!installed(), 'the package is gone');
ok(!-e $CONF && !-e '/etc/markets', 'the changed markets.conf and /etc/markets are gone');
ok(!-e $LOG, "$LOG is gone");
ok(!-e '/usr/sbin/markets' && !-e '/usr/share/markets', 'the programs and /usr/share/markets are gone');
is(`dpkg-statoverride --list | grep -c markets`, "0\n", 'no permission override is left');
is_deeply([markets_processes()], [], 'nothing of the markets account runs');

$t->finish;
done_testing;
