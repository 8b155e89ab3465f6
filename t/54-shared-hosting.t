#!/usr/bin/perl
# Shared hosting as the site owner meets it (docs/shared-hosting.md), done
# as that owner, without root. The host's side is root's and comes from
# scripts/stack: the host's Apache (conf/shared-hosting/host-apache.conf:
# mod_fcgid, mod_rewrite, mod_userdir, suEXEC), MariaDB, memcached and
# the owner's unix account (mk<PORT>, home under the stack's root), plus
# what a host's control panel does: a database and an account with rights
# on it alone. The stack installs none of the owner's files and runs no
# cron stand-in here (no "app" service): the test does the owner's part,
# each step a shell of the owner's (runuser, a bare environment):
# - install: `make install prefix=$HOME/markets` from the suite's build
#   tree (MARKETS_BUILD_DIR, readable by all): the install, not a copy,
#   and no second build of the sources (an ASan build takes minutes). A
#   tree configured for another prefix keeps that prefix compiled into
#   markets-admin, so migrate is given --dir, as the doc says;
# - the configuration outside the document root, 0600, edited in place;
#   `markets-admin migrate` creates the schema in the owner's database;
# - the site: the installed .htaccess and markets.fcgi copied to
#   ~/public_html/markets (the wrapper already naming this install);
# - through Apache at /~OWNER/markets: /healthz, the app running as the
#   owner; create a market and buy (Location under the prefix), Link under
#   the prefix; the cron line run once, then search finds the market;
# - the upgrade in place: `make install` again while a client keeps
#   asking, the running processes keep their (now unlinked) binary, then
#   `pkill -TERM -u OWNER -x markets`: every request still succeeds and
#   the processes that answer afterwards run the new file.
# Test instrumentation beyond the doc: the sanitizers' options (suEXEC
# clears the environment) exported in the wrapper, and the owner's log
# linked into the stack's log/ for the harness's crash check.
# It builds its own shared-hosting stack whichever front the suite runs:
# once, in the default (nginx) run.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep);
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], 'it builds its own shared-hosting stack, so it runs once, in the default run');
plan skip_all => 'the shared-hosting front needs root (it creates the owner\'s account, runs suEXEC)' if $> != 0;
plan skip_all => 'apache2 with mod_fcgid is not installed (scripts/dev test installs it)'
	unless -x '/usr/sbin/apache2' && -e '/usr/lib/apache2/modules/mod_fcgid.so';

my $jwt_secret = join '', map { sprintf '%02x', int rand 256 } 1 .. 32;
my $t = Markets::Test->new(front => 'shared-hosting', services => [qw(mariadb memcached nginx)],
	env => { MARKETS_JWT_SECRET => $jwt_secret });
my $root = $t->root;
my $build = Markets::Test::build_dir();
my $json = JSON::PP->new->utf8->canonical;
my ($owner) = $t->base_path =~ m{^/~([^/]+)/markets$} or BAIL_OUT('no /~owner/markets base path: ' . $t->base_path);
my ($uid, $gid, $home) = (getpwnam $owner)[2, 3, 7];
ok($uid && $uid != 0, "the owner $owner is an ordinary account (uid $uid)");
my $prefix = "$home/markets";
my $conf = "$prefix/etc/markets/markets.conf";
my $site = "$home/public_html/markets";

sub shq { my $s = shift; $s =~ s/'/'\\''/g; "'$s'" }

# as_owner(SHELL-COMMAND): (exit status, output) of the command run by
# the owner's shell, as a login would: the owner's ids, HOME, a bare PATH.
my $sanitizer = "log_path=$root/log/sanitizer";
sub as_owner {
	my ($cmd) = @_;
	my $out = '';
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if (!$pid) {
		open STDERR, '>&', \*STDOUT or POSIX::_exit(120);
		exec 'runuser', '-u', $owner, '--', 'env', '-i', "HOME=$home", "USER=$owner", "LOGNAME=$owner",
			'PATH=/usr/local/bin:/usr/bin:/bin', 'LC_ALL=C',
			'ASAN_OPTIONS=' . join(':', grep { length } $ENV{ASAN_OPTIONS} // '', $sanitizer),
			'UBSAN_OPTIONS=' . join(':', grep { length } $ENV{UBSAN_OPTIONS} // '', $sanitizer),
			'/bin/sh', '-c', "cd && $cmd" or POSIX::_exit(127);
	}
	{ local $/; $out = <$fh> // '' }
	close $fh;
	return ($? >> 8, $out);
}
sub mode_of { my @st = stat $_[0]; return @st ? sprintf('%04o', $st[2] & 07777) : 'missing' }

my ($rc, $out) = as_owner('id -u');
is($out, "$uid\n", 'the owner\'s steps run as the owner, not root');

# ---- the host's side: a database and an account for the site ----------------
my $db = "site_$owner";
my $db_password = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
sub sql_root {
	my ($query) = @_;
	open my $fh, '-|', 'mariadb', '--no-defaults', "--socket=$root/run/mysql.sock", '-uroot', '-N', '-B', '-e', $query
		or die "mariadb: $!";
	my @rows = map { chomp; [split /\t/] } <$fh>;
	close $fh or die "mariadb failed on: $query";
	return @rows;
}
sql_root("CREATE DATABASE `$db` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
	CREATE USER '$owner'\@'localhost' IDENTIFIED BY '$db_password';
	GRANT ALL PRIVILEGES ON `$db`.* TO '$owner'\@'localhost'");

# ---- 1. make install prefix=$HOME/markets ------------------------------------
# Whoever built the tree keeps it up to date (scripts/dev test builds it
# first; a no-op then): the owner may read it, not write to it, so an
# install that had anything to remake (a Makefile.am edited since) fails.
system('make', '-C', $build, '-s', 'all') == 0 or BAIL_OUT("$build: make all failed");
($rc, $out) = as_owner('make -C ' . shq($build) . ' install prefix="$HOME/markets"');
is($rc, 0, 'make install prefix=$HOME/markets, as the owner') or diag($out);
ok(-x "$prefix/sbin/markets" && -x "$prefix/bin/markets-admin", 'sbin/markets and bin/markets-admin');
is((stat "$prefix/sbin/markets")[4], $uid, 'owned by the owner');
my @sql = map { s{.*/}{}r } glob(Markets::Test::repo() . '/sql/*.sql');
is_deeply([map { s{.*/}{}r } glob("$prefix/share/markets/sql/*.sql")], \@sql, 'the migrations in share/markets/sql');
my $examples = "$prefix/share/markets/examples/shared-hosting";
ok(-f "$examples/htaccess" && -x "$examples/markets.fcgi", "the site's two files in share/markets/examples/shared-hosting");
like(Markets::Test::slurp("$examples/markets.fcgi"), qr{^exec \Q$prefix\E/sbin/markets --config \Q$conf\E$}m,
	'the installed wrapper names this install\'s binary and configuration');
ok(-f $conf, 'etc/markets/markets.conf');

# ---- 2. the configuration, the owner's alone ---------------------------------
my %settings = (
	db_socket => "$root/run/mysql.sock", db_user => $owner, db_password => $db_password, db_name => $db,
	jwt_secret => $jwt_secret, cursor_secret => 'shared-hosting-cursor-secret-0123456789abcdef',
	memcached => "unix:$root/run/memcached.sock", log_file => "$prefix/var/log/markets/markets.log",
	# The test's own: its clients all come from 127.0.0.1.
	rate_limit => '100000/60',
);
my $edit = '-e ' . shq(join '', map { "s{^#? ?$_ =.*}{$_ = $settings{$_}};" } sort keys %settings);
($rc, $out) = as_owner('chmod 700 "$HOME/markets/etc/markets" && chmod 600 "$HOME/markets/etc/markets/markets.conf"'
	. ' && perl -pi ' . $edit . ' "$HOME/markets/etc/markets/markets.conf"');
is($rc, 0, 'the owner sets the database, secrets, memcached and log file in markets.conf') or diag($out);
my $text = Markets::Test::slurp($conf);
is(scalar(grep { $text =~ /^\Q$_\E = \Q$settings{$_}\E$/m } keys %settings), scalar keys %settings, 'every setting is in');
is(mode_of($conf), '0600', 'markets.conf is 0600');
is(mode_of("$prefix/etc/markets"), '0700', 'its directory 0700');
unlike($conf, qr{/public_html/}, 'outside the document root');

# ---- 3. the schema -------------------------------------------------------------
my $admin = '"$HOME/markets/bin/markets-admin" --config "$HOME/markets/etc/markets/markets.conf"';
($rc, $out) = as_owner("$admin migrate --dir \"\$HOME/markets/share/markets/sql\"");
is($rc, 0, 'markets-admin migrate, as the owner, with the site\'s account') or diag($out);
is((sql_root("SELECT COUNT(*) FROM `$db`.schema_version"))[0][0], scalar @sql, 'every migration applied to the site\'s database');
($rc, $out) = as_owner("$admin migrate --status --dir \"\$HOME/markets/share/markets/sql\"");
like($out, qr/^\d+ applied, 0 pending$/m, 'none pending') or diag($out);

# ---- 4. the site ---------------------------------------------------------------
($rc, $out) = as_owner('mkdir -p "$HOME/public_html/markets"'
	. ' && cp "$HOME/markets/share/markets/examples/shared-hosting/htaccess" "$HOME/public_html/markets/.htaccess"'
	. ' && cp "$HOME/markets/share/markets/examples/shared-hosting/markets.fcgi" "$HOME/public_html/markets/markets.fcgi"'
	. ' && chmod 755 "$HOME/public_html/markets/markets.fcgi"');
is($rc, 0, 'the owner copies .htaccess and markets.fcgi into public_html/markets') or diag($out);
# Test instrumentation: the sanitizers' options, exported before the exec
# (suEXEC passes no environment), and the owner's log where finish() reads.
my $exports = join '', map { "export $_='" . join(':', grep { length } $ENV{$_} // '', $sanitizer) . "'\\n" }
	qw(ASAN_OPTIONS UBSAN_OPTIONS);
($rc, $out) = as_owner('perl -pi -e ' . shq("s{^exec }{${exports}exec }") . ' "$HOME/public_html/markets/markets.fcgi"');
is($rc, 0, '(the sanitizers\' options exported in the wrapper)') or diag($out);
symlink "$prefix/var/log/markets/markets.log", "$root/log/markets.log" or die "symlink: $!";

# ---- 5. through Apache at /~OWNER/markets ----------------------------------------
my $r = $t->wait_until(60, sub { my $h = $t->get('/healthz'); $h->{status} == 200 ? $h : undef });
ok($r, 'GET ' . $t->path('/healthz') . ' is 200: mod_fcgid started the wrapper') or BAIL_OUT('the site does not answer');
is_deeply($r->{json}, { success => JSON::PP::true, data => { status => 'ok' } }, 'the envelope');
my $metrics = $t->get('/metrics');
my ($pid) = $metrics->{content} =~ /^markets_process_info\{pid="(\d+)",mode="fcgid"/m;
ok($pid, 'the process that answered says it is a mod_fcgid one') or diag($metrics->{content});
is((stat "/proc/$pid")[4], $uid, 'it runs as the owner (suEXEC)') if $pid;
is(readlink("/proc/$pid/exe"), "$prefix/sbin/markets", "it runs the installed binary") if $pid;
my $ready = $t->get('/readyz');
is($ready->{status}, 200, 'GET /readyz: the site\'s database and memcached answer') or diag($ready->{content});

# Create, buy: Location under the prefix.
my %auth = (%{ $t->bearer(sub => '5401', role => 'user', email => 'owner@example.org') }, 'Content-Type' => 'application/json');
sub create {
	my ($name) = @_;
	my $c = $t->request('POST', '/api/markets', { headers => \%auth,
		content => $json->encode({ name => $name, description => "$name Resolves on the day.", end_date => '2031-01-01T00:00:00Z' }) });
	is($c->{status}, 201, "create '$name'") or diag($c->{content});
	return $c;
}
my $c = create('Will the pangolin census top 900?');
my $id = $c->{json}{data}{id};
is(Markets::Test::header($c, 'Location'), $t->path("/api/markets/$id"), 'Location carries the prefix');
my $buy = $t->request('POST', "/api/markets/$id/positions", { headers => \%auth,
	content => $json->encode({ side => 'yes', amount => '12.50' }) });
is($buy->{status}, 201, 'buy: POST /api/markets/:id/positions is 201') or diag($buy->{content});
my $pos = $buy->{json}{data}{id} // 0;
is(Markets::Test::header($buy, 'Location'), $t->path("/api/markets/$id/positions/$pos"), 'its Location carries the prefix');
is($t->get("/api/markets/$id")->{json}{data}{volume}, '12.50', 'the market\'s volume grew by the amount');
is((sql_root("SELECT COUNT(*) FROM `$db`.positions WHERE market_id = $id"))[0][0], 1, 'the position is in the site\'s database');

# Link: the next page under the prefix, and following it works.
my $id2 = create('Will the okapi survey count 40?')->{json}{data}{id};
my $page = $t->get('/api/markets?limit=1');
my ($next) = (Markets::Test::header($page, 'Link') // '') =~ /^<([^>]+)>; rel="next"$/;
like($next // '', qr{^\Q${\ $t->path('/api/markets?limit=1&cursor=')}\E}, 'Link carries the prefix');
my $second = $t->{http}->get($t->base_url . ($next // '/'));
is($second->{status}, 200, 'following it is 200');
is(eval { $json->decode($second->{content})->{data}[0]{id} }, $id, 'and gives the next page');

# ---- 6. the cron line, then search ------------------------------------------------
sub search_ids {
	my ($q) = @_;
	(my $enc = $q) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
	return [map { $_->{id} } @{ $t->get("/api/markets/search?q=$enc&limit=5")->{json}{data} || [] }];
}
ok((sql_root("SELECT COUNT(*) FROM `$db`.jobs WHERE status = 'queued'"))[0][0] >= 2, 'index jobs wait: no master runs them');
ok(!grep({ $_ == $id } @{ search_ids('pangolin census') }), 'the market is not searchable before the drain');
($rc, $out) = as_owner("$admin run-jobs --drain");
is($rc, 0, 'the cron line (markets-admin run-jobs --drain), as the owner, exits 0') or diag($out);
is((sql_root("SELECT COUNT(*) FROM `$db`.jobs WHERE status <> 'done'"))[0][0], 0, 'every job done');
ok($t->wait_until(15, sub { my $got = search_ids('pangolin census'); @$got && $got->[0] == $id }),
	'then a search finds the new market first');

# ---- 7. the upgrade in place, while a client keeps asking -----------------------------
sub owner_apps {
	return grep { (stat "/proc/$_")[4] == $uid && Markets::Test::slurp("/proc/$_/comm") eq "markets\n" }
		map { m{/proc/(\d+)$} } glob '/proc/[0-9]*';
}
my @old = owner_apps();
ok(@old >= 1, 'the owner\'s app processes before: ' . join(',', @old));
my $old_ino = (stat "$prefix/sbin/markets")[1];
my $statuses = "$root/upgrade-client.log";
my $client = fork // die "fork: $!";
if (!$client) {
	my $http = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
	open my $log, '>', $statuses or POSIX::_exit(1);
	$log->autoflush(1);
	my $stop = 0;
	local $SIG{TERM} = sub { $stop = 1 };
	until ($stop) {
		for my $p ('/healthz', "/api/markets/$id") {
			my $res = $http->get($t->base_url . $t->path($p));
			print $log "$res->{status} $p\n";
		}
		sleep 0.02;
	}
	POSIX::_exit(0);
}
sub client_lines { grep { length } split /\n/, Markets::Test::slurp($statuses) }
$t->wait_until(10, sub { client_lines() >= 4 });

($rc, $out) = as_owner('make -C ' . shq($build) . ' install prefix="$HOME/markets"');
is($rc, 0, 'the upgrade: make install prefix=$HOME/markets again, as the owner') or diag($out);
my $new_ino = (stat "$prefix/sbin/markets")[1];
isnt($new_ino, $old_ino, 'the binary is a new file, not the old one written over');
is(scalar(grep { (readlink("/proc/$_/exe") // '') eq "$prefix/sbin/markets (deleted)" } @old), scalar @old,
	'the running processes keep the old binary meanwhile');
($rc, $out) = as_owner("$admin migrate --dir \"\$HOME/markets/share/markets/sql\"");
is($rc, 0, 'migrate again (nothing to do)') or diag($out);
my $seen = client_lines();
($rc, $out) = as_owner('pkill -TERM -u "$(id -un)" -x markets');
is($rc, 0, 'the owner tells the old processes to finish (pkill -TERM -u OWNER -x markets)') or diag($out);
ok($t->wait_until(30, sub { !grep { kill 0, $_ } @old }), 'the old processes exit');
ok($t->wait_until(30, sub { client_lines() >= $seen + 20 }), 'the client kept asking meanwhile');
kill 'TERM', $client;
waitpid $client, 0;
my @lines = client_lines();
my @bad = grep { !/^200 / } @lines;
is(scalar @bad, 0, 'every request during the upgrade succeeded (' . scalar(@lines) . ' requests)') or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

$metrics = $t->get('/metrics');
my ($new_pid) = $metrics->{content} =~ /^markets_process_info\{pid="(\d+)",mode="fcgid"/m;
ok($new_pid && !grep({ $_ == $new_pid } @old), 'a new process answers (' . ($new_pid // '?') . ')');
is(readlink("/proc/$new_pid/exe"), "$prefix/sbin/markets", 'it runs the binary on disk') if $new_pid;
is((stat "/proc/$new_pid/exe")[1], $new_ino, 'the new one') if $new_pid;
is($t->get("/api/markets/$id")->{json}{data}{volume}, '12.50', 'and serves the same data');

$t->finish;
done_testing;
