#!/usr/bin/perl
# `./configure && make && make install`, as someone who installs from
# source meets it: prefix, sysconfdir and localstatedir are honoured and
# DESTDIR stages the install: sbin/markets, bin/markets-admin,
# share/markets/ (sql/ with every migration and the seed, the Apache
# error pages, the examples with this install's paths), the man pages
# (markets.conf(5) lists every key of src/core/config.c's table), the
# systemd units and etc/markets/markets.conf. A second install keeps an
# operator's changed markets.conf, and uninstalling leaves it too.
# Installed for real under a temporary prefix, `markets-admin migrate
# --status` finds the installed migrations without --dir. The build is
# the distribution's: a fresh configure of the source tree in a temp dir.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Find qw(find);
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], "front-independent: configure, make install and uninstall; the shared-hosting install is t/54's");

my $repo = Markets::Test::repo();
my $work = tempdir('markets-install-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{MARKETS_KEEP_TMP});

sub shq { my $s = shift; $s =~ s/'/'\\''/g; "'$s'" }
sub slurp { Markets::Test::slurp(@_) }
sub spew { my ($path, $text) = @_; open my $fh, '>', $path or die "$path: $!"; print $fh $text; close $fh or die "$path: $!" }

# run(DIR, COMMAND): (exit status, stdout and stderr), the output kept in
# $work/last.log for a failure's diag.
sub run {
	my ($dir, $cmd) = @_;
	my $out = `cd ${\ shq($dir)} && ( $cmd ) 2>&1`;
	spew("$work/last.log", $out);
	return ($? >> 8, $out);
}

# Every file under a directory, relative to it, sorted.
sub files_under {
	my ($top) = @_;
	my @files;
	find({ no_chdir => 1, wanted => sub { push @files, substr($File::Find::name, length($top) + 1) if -f } }, $top)
		if -d $top;
	return sort @files;
}

ok(-x "$repo/configure", 'the source tree is bootstrapped (scripts/dev runs autoreconf)')
	or BAIL_OUT('run scripts/dev test (or autoreconf -fi) first');

# One build, configured as a packager would, with every directory moved.
my $inst = "$work/inst";
my %dir = (
	prefix => $inst,
	sysconfdir => "$work/etc",
	localstatedir => "$work/var",
	unitdir => "$work/units",
);
my $build = "$work/build";
mkdir $build or die $!;
my ($rc, $out) = run($build, "${\ shq(\"$repo/configure\")} --prefix=${\ shq($dir{prefix})}"
	. " --sysconfdir=${\ shq($dir{sysconfdir})} --localstatedir=${\ shq($dir{localstatedir})}"
	. " --with-systemdsystemunitdir=${\ shq($dir{unitdir})}");
is($rc, 0, 'configure with --prefix, --sysconfdir, --localstatedir and --with-systemdsystemunitdir') or diag($out);
($rc, $out) = run($build, 'make -j2');
is($rc, 0, 'make') or diag($out);

# Staged with DESTDIR: nothing lands outside it.
my $stage = "$work/stage";
($rc, $out) = run($build, "make install DESTDIR=${\ shq($stage)}");
is($rc, 0, 'make install DESTDIR=...') or diag($out);
ok(!-e $inst && !-e $dir{sysconfdir} && !-e $dir{unitdir}, 'nothing was installed outside DESTDIR');

my $p = "$stage$inst";
my $share = "$p/share/markets";
ok(-x "$p/sbin/markets", 'sbin/markets');
ok(-x "$p/bin/markets-admin", 'bin/markets-admin');
ok(!-e "$p/bin/markets", 'the server is not in bin/');

my @sql = map { s{^\Q$repo\E/sql/}{}r } sort(glob("$repo/sql/*.sql"), glob("$repo/sql/seed/*.sql"));
is_deeply([files_under("$share/sql")], \@sql, 'share/markets/sql holds every migration and the seed, laid out as sql/ is');
is(slurp("$share/sql/$_"), slurp("$repo/sql/$_"), "share/markets/sql/$_ is the source's") for @sql;
is_deeply([files_under("$share/examples")],
	[qw(apache-markets.conf apache-proxy-fcgi.conf markets.conf nginx-markets.conf shared-hosting/htaccess shared-hosting/markets.fcgi)],
	'share/markets/examples: the nginx and Apache configurations, the shared-hosting files and markets.conf');
ok(-x "$share/examples/shared-hosting/markets.fcgi", 'the shared-hosting wrapper is executable');
like(slurp("$share/examples/shared-hosting/markets.fcgi"),
	qr{^exec \Q$inst\E/sbin/markets --config \Q$dir{sysconfdir}\E/markets/markets\.conf$}m,
	'and runs this sbin/markets with this sysconfdir\'s markets.conf');
like(slurp("$share/examples/apache-proxy-fcgi.conf"), qr{^\s*ProxyPass / "unix:/run/markets/markets\.sock\|fcgi://localhost/"}m,
	'the mod_proxy_fcgi example proxies to the socket');

# The examples name this install's paths, not the source's defaults.
my $apache = slurp("$share/examples/apache-markets.conf");
like($apache, qr{^\s*FcgidWrapper \Q$inst\E/sbin/markets virtual$}m, 'the Apache example runs this sbin/markets');
like($apache, qr{MARKETS_CONFIG \Q$dir{sysconfdir}\E/markets/markets\.conf$}m, 'and reads this sysconfdir\'s markets.conf');
(my $others = $apache) =~ s{\Q$inst\E|\Q$dir{sysconfdir}\E}{}g;
unlike($others, qr{/usr/local|/usr/s?bin|/usr/share|/etc/markets}, 'no other install path is left in it');
like(slurp("$share/examples/nginx-markets.conf"), qr{\Q$dir{sysconfdir}\E/markets/markets\.conf},
	'the nginx example names this sysconfdir too');

# The configuration, the log directory and the units.
my $conf = "$stage$dir{sysconfdir}/markets/markets.conf";
is(slurp($conf), slurp("$repo/conf/markets.conf"), 'sysconfdir/markets/markets.conf is conf/markets.conf');
ok(-d "$stage$dir{localstatedir}/log/markets", 'localstatedir/log/markets exists (for log_file)');
ok(-f "$stage$dir{unitdir}/markets.$_", "the unit markets.$_ is in --with-systemdsystemunitdir") for qw(service socket);

# Man pages: markets(8), markets-admin(8), markets.conf(5).
ok(-f "$p/share/man/man8/$_.8", "man page $_(8)") for qw(markets markets-admin);
my $page = slurp("$p/share/man/man5/markets.conf.5");
ok(length $page, 'man page markets.conf(5)');
my ($table) = slurp("$repo/src/core/config.c") =~ /conf_keys\[\]\s*=\s*\{(.*?)\n\};/s;
my @keys = ($table // '') =~ /\{\s*"([a-z0-9_]+)",\s*CONF_/g;
cmp_ok(scalar @keys, '>', 40, 'config.c\'s table read (' . scalar(@keys) . ' keys)');
my @undocumented = grep { $page !~ /^\.It Cm \Q$_\E No = /m } @keys;
is_deeply(\@undocumented, [], 'markets.conf(5) has an entry for every key of config.c\'s table');
like($page, qr{^\.It Pa \Q$dir{sysconfdir}\E/markets/markets\.conf$}m, 'and names this sysconfdir\'s file');
like(slurp("$p/share/man/man8/markets-admin.8"), qr{^\.Pa \Q$inst\E/share/markets/sql$}m,
	'markets-admin(8) names the installed migrations');
SKIP: {
	skip 'no groff to check the man pages with', 3 unless grep { -x "$_/groff" } split /:/, $ENV{PATH};
	for my $man (map { "$p/share/man/$_" } qw(man8/markets.8 man8/markets-admin.8 man5/markets.conf.5)) {
		is(`groff -mandoc -ww -z ${\ shq($man)} 2>&1`, '', "groff warns of nothing in $man");
	}
}

# The page cannot drift: conf2mdoc refuses a file that misses a key.
(my $short = slurp("$repo/conf/markets.conf")) =~ s/^# job_poll = .*\n//m;
spew("$work/short.conf", $short);
($rc, $out) = run($work, "perl ${\ shq(\"$repo/scripts/conf2mdoc\")} short.conf ${\ shq(\"$repo/src/core/config.c\")}");
isnt($rc, 0, 'conf2mdoc refuses a markets.conf that leaves a key out');
like($out, qr/does not document: job_poll/, 'and names the key');

# An upgrade never overwrites the operator's file; uninstalling keeps it.
spew($conf, slurp($conf) . "workers = 3\n");
my $changed = slurp($conf);
($rc, $out) = run($build, "make install DESTDIR=${\ shq($stage)}");
is($rc, 0, 'make install again') or diag($out);
is(slurp($conf), $changed, 'the changed markets.conf was kept');
like($out, qr/keeping \Q$conf\E/, 'and make install says so');
($rc, $out) = run($build, "make uninstall DESTDIR=${\ shq($stage)}");
is($rc, 0, 'make uninstall') or diag($out);
is_deeply([files_under($stage)], ["${\ substr($dir{sysconfdir}, 1)}/markets/markets.conf"],
	'uninstall removes every file but the changed markets.conf');
unlink $conf or die $!;
($rc, $out) = run($build, "make install DESTDIR=${\ shq($stage)} && make uninstall DESTDIR=${\ shq($stage)}");
is($rc, 0, 'install and uninstall again') or diag($out);
is_deeply([files_under($stage)], [], 'an unchanged markets.conf goes with the rest');

# Installed for real: migrate's default directory is the installed sql/.
($rc, $out) = run($build, 'make install');
is($rc, 0, 'make install (no DESTDIR) under the temporary prefix') or diag($out);
($rc, $out) = run($work, "${\ shq(\"$inst/bin/markets-admin\")} --help");
like($out, qr{default DIR: \Q$inst\E/share/markets/sql\)}, 'markets-admin --help names the installed migrations');

my $t = Markets::Test->new(services => [qw(mariadb)]);
my $root = $t->root;
local $ENV{MARKETS_DB_SOCKET} = "$root/run/mysql.sock";
local $ENV{MARKETS_DB_USER} = 'root';
local $ENV{MARKETS_DB_PASSWORD} = '';
local $ENV{MARKETS_DB_NAME} = 'markets';
# From elsewhere than the source tree, so no ./sql can be what it finds.
($rc, $out) = run($work, "${\ shq(\"$inst/bin/markets-admin\")} --config ${\ shq(\"$dir{sysconfdir}/markets/markets.conf\")} migrate --status");
is($rc, 0, 'the installed markets-admin migrate --status, without --dir, exits 0') or diag($out);
my @migrations = grep { !m{/} } @sql;
like($out, qr/^applied\s+\Q$_\E\s/m, "it lists $_ as applied") for @migrations;
unlike($out, qr/^pending/m, 'and nothing pending');

$t->finish;
done_testing;
