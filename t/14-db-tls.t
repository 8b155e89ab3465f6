#!/usr/bin/perl
# TLS to MariaDB over TCP (db_tls): with a server that refuses insecure TCP
# (require_secure_transport), `verify` against the right CA connects (the
# app is ready), `off` is refused, and `verify` against another CA is too;
# markets-admin migrate follows db_tls the same way.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

Markets::Test::fronts_only(['nginx'],
	"db_tls lies between the app and MariaDB; the app is asked on its own socket and no front is started, so every front would run the same test");

plan skip_all => 'openssl is not installed' unless system('openssl version >/dev/null 2>&1') == 0;
my $t = Markets::Test->new(services => [qw(mariadb)]);
my $root = $t->root;
my $pki = tempdir(CLEANUP => 1);
chmod 0755, $pki;

sub run { my $cmd = shift; is(system("$cmd >>$pki/openssl.log 2>&1"), 0, "openssl: " . substr($cmd, 8, 40)) or diag(Markets::Test::slurp("$pki/openssl.log")) }
for my $ca (qw(ca other)) {
	run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-$ca -keyout $pki/$ca.key -out $pki/$ca.pem");
}
run("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout $pki/server.key -out $pki/server.csr");
open my $ext, '>', "$pki/ext.cnf" or die $!;
print $ext "subjectAltName=IP:127.0.0.1\n";
close $ext;
run("openssl x509 -req -in $pki/server.csr -CA $pki/ca.pem -CAkey $pki/ca.key -CAcreateserial -days 2 -extfile $pki/ext.cnf -out $pki/server.pem");

# The stack's MariaDB again, on TCP too, refusing anything but TLS there.
my $pid = $t->pid_of('mysqld');
kill 'TERM', $pid;
ok($t->wait_until(30, sub { !kill(0, $pid) || Markets::Test::slurp("/proc/$pid/stat") =~ /^\d+ \(.*\) Z/ }), 'MariaDB stopped');
my $port = Markets::Test::free_port();
my $mysqld = fork // die;
if ($mysqld == 0) {
	open STDOUT, '>>', "$root/log/mysqld-tls.out";
	open STDERR, '>&', \*STDOUT;
	exec 'mariadbd', '--no-defaults', "--datadir=$root/db", "--socket=$root/run/mysql.sock", "--port=$port",
		'--bind-address=127.0.0.1', "--pid-file=$root/run/mysqld.pid", "--log-error=$root/log/mysqld.log",
		'--skip-log-bin', "--ssl-ca=$pki/ca.pem", "--ssl-cert=$pki/server.pem", "--ssl-key=$pki/server.key",
		'--require-secure-transport=ON', ($> == 0 ? ('--user=root') : ());
	exit 127;
}
ok($t->wait_until(30, sub { eval { $t->sql('SELECT 1'); 1 } }), 'MariaDB up with TLS on TCP');
my @have_ssl = $t->sql("SHOW GLOBAL VARIABLES LIKE 'have_ssl'");
is($have_ssl[0][1], 'YES', 'the server speaks TLS');

# The app over TCP, per db_tls.
sub app_ready {
	my (%env) = @_;
	my $app = $t->master_pid if -s "$root/run/markets.pid";
	if ($app) {
		kill 'TERM', $app;
		# Gone, not only its socket: a draining master still owns the pid file.
		$t->wait_until(20, sub { !-e "$root/run/markets.sock" && (!kill(0, $app)
			|| Markets::Test::slurp("/proc/$app/stat") =~ /^\d+ \(.*\) Z/) });
	}
	$t->{env} = { %{ $t->{env} }, MARKETS_DB_SOCKET => '', MARKETS_DB_HOST => '127.0.0.1', MARKETS_DB_PORT => $port, %env };
	$t->start('app');
	require Markets::FastCGI;
	my $r = Markets::FastCGI->simple($t->app_socket, params => { REQUEST_URI => '/readyz' });
	return $r;
}
my $r = app_ready(MARKETS_DB_TLS => 'verify', MARKETS_DB_TLS_CA => "$pki/ca.pem");
is($r->{status}, 200, 'db_tls=verify with the right CA: ready') or diag($r->{body}, Markets::Test::slurp($t->app_log));
like($r->{body}, qr/"database":"ok"/, 'the database answers over TLS');
$r = app_ready(MARKETS_DB_TLS => 'off', MARKETS_DB_TLS_CA => '');
is($r->{status}, 503, 'db_tls=off: the server refuses plain TCP');
like($r->{body}, qr/database/, 'and /readyz says the database');
$r = app_ready(MARKETS_DB_TLS => 'verify', MARKETS_DB_TLS_CA => "$pki/other.pem");
is($r->{status}, 503, 'db_tls=verify with another CA: refused');
$r = app_ready(MARKETS_DB_TLS => 'required', MARKETS_DB_TLS_CA => '');
is($r->{status}, 200, 'db_tls=required (encrypted, not verified): ready');

# markets-admin migrate connects as the app does (store/db), db_tls
# included: with the right CA it reads schema_version over TLS (a client
# that ignored db_tls would be refused by require_secure_transport).
sub migrate_status {
	my (%env) = @_;
	my $repo = Markets::Test::repo();
	local %ENV = (%ENV, MARKETS_DB_SOCKET => '', MARKETS_DB_HOST => '127.0.0.1', MARKETS_DB_PORT => $port,
		ASAN_OPTIONS => "log_path=$root/log/sanitizer", UBSAN_OPTIONS => "log_path=$root/log/sanitizer", %env);
	my $out = `'${\ Markets::Test::build_dir()}/markets-admin' --config '$repo/conf/markets.conf' --config '$root/db.conf' migrate --status --dir '$repo/sql' 2>'$pki/migrate.err'`;
	return ($? >> 8, $out, Markets::Test::slurp("$pki/migrate.err"));
}
my ($rc, $out, $err) = migrate_status(MARKETS_DB_TLS => 'verify', MARKETS_DB_TLS_CA => "$pki/ca.pem");
is($rc, 0, 'migrate --status with db_tls=verify and the right CA: exit 0') or diag($err);
like($out, qr/^applied\s+001_users\.sql\s/m, 'and it read schema_version over TLS');
($rc, $out, $err) = migrate_status(MARKETS_DB_TLS => 'verify', MARKETS_DB_TLS_CA => "$pki/other.pem");
is($rc, 1, 'migrate with db_tls=verify against another CA: exit 1');
like($err, qr/cannot connect to the database.*(?:TLS|SSL)/, 'it cannot connect: a TLS error, not a cleartext refusal') or diag($err);
($rc, $out, $err) = migrate_status(MARKETS_DB_TLS => 'off', MARKETS_DB_TLS_CA => '');
is($rc, 1, 'migrate with db_tls=off: the server refuses cleartext, exit 1');
like($err, qr/cannot connect to the database/, 'it says so') or diag($err);

$t->finish;
waitpid $mysqld, 0;
done_testing;
