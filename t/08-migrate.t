#!/usr/bin/perl
# markets-admin migrate, as an operator meets it: against a private
# MariaDB (whose schema scripts/stack already applied with the same
# command), --status lists what is applied and pending; a run applies only
# the new NNN_*.sql files, in order, each once, and records them in
# schema_version; a failing file names itself and the server's error, is
# not recorded, and stops the run; duplicate numbers and oversized files
# are refused; two runs at once apply a slow file once; bad database
# settings and bad arguments fail with a message and exit 1 or 2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use POSIX qw(_exit);
use Test::More;
use Time::HiRes qw(time);
use Markets::Test;

Markets::Test::fronts_only(['nginx'],
	"markets-admin migrate against MariaDB alone starts no app or front, so every front would run the same test");

my $bin = Markets::Test::build_dir() . '/markets-admin';
my $repo = Markets::Test::repo();
my $work = tempdir(CLEANUP => 1);

my $t = Markets::Test->new(services => [qw(mariadb)]);
my $root = $t->root;

# The same overrides scripts/stack uses: root over the stack's socket.
my %db = (MARKETS_DB_SOCKET => "$root/run/mysql.sock", MARKETS_DB_USER => 'root',
	MARKETS_DB_PASSWORD => '', MARKETS_DB_NAME => 'markets');
# Sanitizer reports go where $t->finish looks for them.
my %san = (ASAN_OPTIONS => "log_path=$root/log/sanitizer", UBSAN_OPTIONS => "log_path=$root/log/sanitizer");

sub shq { my $s = shift; $s =~ s/'/'\\''/g; "'$s'" }

# run({ env }, ARGS...) in the repo, where a ./sql is that the default
# --dir must not take: (exit status, stdout, stderr).
sub run {
	my ($env, @args) = @_;
	local %ENV = (%ENV, %db, %san, %$env);
	my $err = "$work/stderr";
	my $out = `cd ${\ shq($repo)} && ${\ shq($bin)} --config ${\ shq("$repo/conf/markets.conf")} @{[map { shq($_) } @args]} 2>${\ shq($err)}`;
	return ($? >> 8, $out, Markets::Test::slurp($err));
}
sub migrate { run({}, 'migrate', @_) }
sub write_file { my ($path, $text) = @_; open my $fh, '>', $path or die "$path: $!"; print $fh $text; close $fh or die "$path: $!" }
sub versions { map { "$_->[0] $_->[1]" } $t->sql('SELECT version, name FROM schema_version ORDER BY version') }
sub table_exists {
	my ($name) = @_;
	return ($t->sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'markets' AND TABLE_NAME = '$name'"))[0][0];
}

ok(-x $bin, "markets-admin is built ($bin)") or BAIL_OUT('build markets-admin first');

# The migrations the project ships ("N NNN_name.sql"); the test's own are numbered 9xx.
my @shipped = map { m{/((\d{3})_[^/]+\.sql)$} ? (0 + $2) . " $1" : () } sort glob "$repo/sql/[0-9][0-9][0-9]_*.sql";
my $nshipped = @shipped;

# scripts/stack applied sql/ with markets-admin migrate.
is_deeply([versions()], \@shipped, "the stack recorded the $nshipped shipped migrations");
like(Markets::Test::slurp("$root/log/migrate.log"), qr/^applied 001_users\.sql\n.*^applied 002_markets\.sql$/ms,
	'scripts/stack ran markets-admin migrate (log/migrate.log)');

# The default directory is where `make install` puts sql/ (configure's
# datadir, e.g. /usr/local/share/markets/sql), not ./sql: markets-admin
# --help names it, and without --dir migrate reads it (t/51-install.t
# installs it for real; here it is usually absent, and named).
my ($rc, $out, $err) = run({}, '--help');
my ($default) = $out =~ /\(default DIR: (\S+)\)/;
like($default // '', qr{^/.*/share/markets/sql$}, "migrate's default directory is the installed share/markets/sql ("
	. ($default // 'none') . ')');
($rc, $out, $err) = migrate('--status');
if (defined $default && -d $default) {
	is($rc, 0, "--status without --dir reads $default, which is installed here") or diag($err);
} else {
	is($rc, 1, '--status without --dir, nothing installed: exit 1');
	like($err, qr/cannot open the migrations directory \Q$default\E: No such file/, 'names the installed directory, not ./sql');
}

# --status, with the source tree's sql/.
($rc, $out, $err) = migrate('--status', '--dir', "$repo/sql");
is($rc, 0, '--status exits 0') or diag($err);
like($out, qr/^applied\s+001_users\.sql\s/m, '--status: 001 applied');
like($out, qr/^applied\s+002_markets\.sql\s/m, '--status: 002 applied');
unlike($out, qr/^pending/m, '--status: nothing pending');

# Running again applies nothing.
($rc, $out, $err) = migrate('--dir', "$repo/sql");
is($rc, 0, 'a second migrate exits 0') or diag($err);
unlike($out, qr/^applied /m, 'and applies nothing');
like($out, qr/^0 applied, $nshipped already applied$/m, 'and says so');
is(scalar(versions()), $nshipped, 'schema_version has as many rows as before');

# A copy of sql/ with a new two-statement migration, and names to ignore.
my $dir = "$work/sql";
mkdir $dir or die $!;
copy($_, $dir) or die "$_: $!" for glob "$repo/sql/[0-9][0-9][0-9]_*.sql";
write_file("$dir/903_test.sql", "-- 903: a test table\nCREATE TABLE t3 (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50) NOT NULL);\n"
	. "INSERT INTO t3 (note) VALUES ('from 903');\n");
write_file("$dir/$_", "this is not SQL\n") for qw(README 03_short.sql 009-dash.sql 010_x.SQL 011_sp.ce.sql);

($rc, $out, $err) = migrate('--status', '--dir', $dir);
is($rc, 0, '--status --dir exits 0') or diag($err);
like($out, qr/^pending\s+903_test\.sql$/m, '--status: 003 pending');
unlike($out, qr/README|03_short|009-dash|010_x|011_sp/, '--status: names that are no NNN_name.sql are ignored');
ok(!table_exists('t3'), '--status applied nothing');

($rc, $out, $err) = migrate('--dir', $dir);
is($rc, 0, 'migrate --dir applies the new file') or diag($err);
is($out, "applied 903_test.sql\n1 applied, $nshipped already applied\n", 'one line for it, and a summary');
is_deeply([versions()], [@shipped, '903 903_test.sql'], '903 is recorded');
is_deeply([$t->sql('SELECT note FROM t3')], [['from 903']], 'both statements ran: the table and its row');
($rc, $out) = migrate('--dir', $dir);
is($rc, 0, 'again: exit 0');
is_deeply([$t->sql('SELECT note FROM t3')], [['from 903']], 'again: 003 did not run twice');

# A failing migration: named, with the server's error; not recorded; the
# files after it wait; the ones before stay.
write_file("$dir/904_bad.sql", "CREATE TABLE IF NOT EXISTS t4 (id INT PRIMARY KEY);\nINSERT INTO t4 VALUES (4) oops;\n");
write_file("$dir/905_later.sql", "INSERT INTO t4 VALUES (5);\n");
($rc, $out, $err) = migrate('--dir', $dir);
is($rc, 1, 'a migration with a syntax error exits 1');
like($err, qr/904_bad\.sql failed at statement 2: .*SQL syntax.*near 'oops/, 'names the file, the statement and the server error');
unlike($out, qr/^applied/m, 'reports nothing applied');
is_deeply([versions()], [@shipped, '903 903_test.sql'], '904 not recorded, 903 stays, 905 not run');
is_deeply([$t->sql('SELECT id FROM t4')], [], 'the failing statement changed nothing');
($rc, $out) = migrate('--status', '--dir', $dir);
like($out, qr/^applied\s+903_test\.sql\s.*^pending\s+904_bad\.sql\n.*^pending\s+905_later\.sql$/ms, '--status: 003 applied, 004 and 005 pending');

write_file("$dir/904_bad.sql", "CREATE TABLE IF NOT EXISTS t4 (id INT PRIMARY KEY);\nINSERT INTO t4 VALUES (4);\n");
($rc, $out, $err) = migrate('--dir', $dir);
is($rc, 0, 'fixed: exit 0') or diag($err);
is($out, "applied 904_bad.sql\napplied 905_later.sql\n2 applied, ${\ ($nshipped + 1)} already applied\n", 'fixed: 904 then 905 applied');
is_deeply([$t->sql('SELECT id FROM t4 ORDER BY id')], [[4], [5]], 'in numeric order, each once');

# Two files with one number.
write_file("$dir/905_dup.sql", "CREATE TABLE t5 (id INT);\n");
($rc, $out, $err) = migrate('--dir', $dir);
ok($rc == 1 || $rc == 2, "two files numbered 005: exit $rc");
like($err, qr/905_dup\.sql.*same number 905|905_later\.sql.*905_dup\.sql.*same number/, 'names both files');
ok(!table_exists('t5'), 'nothing applied');
($rc) = migrate('--status', '--dir', $dir);
ok($rc == 1 || $rc == 2, "--status refuses them too: exit $rc");
unlink "$dir/905_dup.sql" or die $!;

# Larger than 1 MiB: refused; exactly 1 MiB: applied.
my $stmt = "INSERT INTO t4 VALUES (7);\n";
write_file("$dir/907_big.sql", ' ' x (1024 * 1024 + 1 - length $stmt) . $stmt);
($rc, $out, $err) = migrate('--dir', $dir);
is($rc, 1, 'a file of 1 MiB + 1 byte: exit 1');
like($err, qr/907_big\.sql: larger than 1 MiB/, 'says why');
is_deeply([$t->sql('SELECT COUNT(*) FROM schema_version WHERE version = 907')], [[0]], 'not recorded');
write_file("$dir/907_big.sql", ' ' x (1024 * 1024 - length $stmt) . $stmt);
($rc, $out, $err) = migrate('--dir', $dir);
is($rc, 0, 'exactly 1 MiB: applied') or diag($err);
is_deeply([$t->sql('SELECT id FROM t4 WHERE id = 7')], [[7]], 'and ran');

# Two runs at once on a slow migration: one applies it, the other waits for
# the lock, then finds it recorded.
write_file("$dir/912_slow.sql", "SELECT SLEEP(2);\nINSERT INTO t3 (note) VALUES ('from 912');\n");
my $started = time;
my @kids;
for my $n (1, 2) {
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		local %ENV = (%ENV, %db, %san);
		open STDOUT, '>', "$work/out$n" or _exit(99);
		open STDERR, '>', "$work/err$n" or _exit(99);
		exec($bin, '--config', "$repo/conf/markets.conf", 'migrate', '--dir', $dir) or _exit(98);
	}
	push @kids, $pid;
}
my @rcs = map { waitpid($_, 0); $? >> 8 } @kids;
my $elapsed = time - $started;
is_deeply(\@rcs, [0, 0], 'both concurrent runs exit 0')
	or diag(map { Markets::Test::slurp("$work/err$_") } 1, 2);
my $applied = grep { Markets::Test::slurp("$work/out$_") =~ /^applied 912_slow\.sql$/m } 1, 2;
is($applied, 1, 'exactly one run applied 912');
is_deeply([$t->sql('SELECT COUNT(*) FROM schema_version WHERE version = 912')], [[1]], 'schema_version has one row for 912');
is_deeply([$t->sql("SELECT COUNT(*) FROM t3 WHERE note = 'from 912'")], [[1]], 'its statements ran once');
cmp_ok($elapsed, '<', 30, "the waiting run did not time out (${\ sprintf '%.1f', $elapsed}s)");

# Bad settings and arguments.
($rc, $out, $err) = run({ MARKETS_DB_SOCKET => '/nonexistent' }, 'migrate', '--dir', $dir);
is($rc, 1, 'MARKETS_DB_SOCKET=/nonexistent: exit 1');
like($err, qr/cannot connect to the database.*\/nonexistent/, 'says it cannot connect, and where');
($rc, $out, $err) = run({ MARKETS_DB_PASSWORD => 'wrong' }, 'migrate', '--dir', $dir);
is($rc, 1, 'a wrong password: exit 1');
like($err, qr/Access denied/, "with the server's reason");
($rc, $out, $err) = migrate('--dir', "$work/none");
is($rc, 1, 'a missing --dir: exit 1');
like($err, qr/\Q$work\/none\E: No such file/, 'names it');
($rc, $out, $err) = migrate('--bogus');
is($rc, 2, 'an unknown option: exit 2');
like($err, qr/usage:/, 'prints the usage');
($rc, $out, $err) = migrate('extra');
is($rc, 2, 'a stray argument: exit 2');
($rc, $out, $err) = migrate('--dir');
is($rc, 2, '--dir without a value: exit 2');
is(scalar(versions()), $nshipped + 5, 'none of these changed schema_version');

# scripts/stack needs the binary, and says so.
my $other = tempdir('markets-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
{
	local %ENV = (%ENV, MARKETS_BUILD_DIR => "$work/nobuild");
	my $msg = `${\ shq("$repo/scripts/stack")} start ${\ shq($other)} --services mariadb 2>&1`;
	isnt($? >> 8, 0, 'scripts/stack without markets-admin fails');
	like($msg, qr/no markets-admin binary in \Q$work\/nobuild\E/, 'and says why');
	system("$repo/scripts/stack", 'stop', $other);
}

$t->finish;
done_testing;
