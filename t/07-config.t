#!/usr/bin/perl
# Configuration at start-up, as an operator meets it: a bad file stops the
# start with file, line and reason (and a non-zero exit, before any socket
# is opened); MARKETS_<KEY> overrides a file; --test-config checks and exits.
# Keys: no cursor key means no start; a public key is no secret.
# --dump-config prints the effective settings (files, then environment) in
# the file's syntax with secrets redacted, and its output reads back; a
# secret given as @/path is read from the file (the running app takes
# tokens signed with it); an unreadable one stops the start naming key and
# path; an unknown MARKETS_* variable is a warning naming it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

my $bin = Markets::Test::build_dir() . '/markets';
my $repo = Markets::Test::repo();
my $dir = tempdir(CLEANUP => 1);

sub run {
	my ($env, @args) = @_;
	local %ENV = (%ENV, %$env);
	delete @ENV{ grep { !defined $ENV{$_} } keys %$env };
	my $out = `'$bin' @args 2>&1`;
	return ($? >> 8, $out);
}
sub conf { my ($name, $text) = @_; open my $fh, '>', "$dir/$name" or die $!; print $fh $text; close $fh; "$dir/$name" }

my $CURSOR = 'config-test-cursor-secret-0123456789abcdef';
my ($rc, $out) = run({ MARKETS_CURSOR_SECRET => $CURSOR }, '--config', "$repo/conf/markets.conf", '--test-config');
is($rc, 0, 'the shipped conf/markets.conf, given a cursor_secret, is valid') or diag($out);

my @bad = (
	["workers = 2\nwokers = 3\n", ':2: unknown key \'wokers\''],
	["# x\n\nmax_body = 1q\n", ':3: max_body: not a size'],
	["workers = 2\nworkers = 3\n", ":2: 'workers' is set twice"],
	["jwt_secret = short\n", ':1: jwt_secret: must be at least 32 bytes'],
	["log_level = loud\n", ':1: log_level: must be one of'],
	["just words\n", ':1: expected \'key = value\''],
);
for my $case (@bad) {
	my ($text, $want) = @$case;
	my $file = conf('bad.conf', $text);
	my $sock = "$dir/never.sock";
	($rc, $out) = run({}, '--config', $file, '--listen', "unix:$sock");
	is($rc, 1, "bad config exits 1: $want");
	like($out, qr/\Q$file$want\E/, "names file, line and reason: $want");
	ok(!-e $sock, 'no socket was opened');
}
($rc, $out) = run({}, '--config', "$dir/missing.conf", '--test-config');
is($rc, 1, 'a missing file stops the start');
like($out, qr/\Q$dir\/missing.conf\E: No such file/, 'and says which');

# The environment overrides files; a bad environment value is named too.
my $file = conf('ok.conf', "workers = 2\ncursor_secret = $CURSOR\n");
($rc, $out) = run({ MARKETS_WORKERS => 'many' }, '--config', $file, '--test-config');
is($rc, 1, 'a bad MARKETS_WORKERS stops the start');
like($out, qr/environment MARKETS_WORKERS: not a non-negative integer/, 'and is named');
($rc, $out) = run({ MARKETS_MAX_BODY => '2m', MARKETS_PORT => '9999' }, '--config', $file, '--test-config');
is($rc, 0, 'good overrides pass; variables that are no key (MARKETS_PORT) are ignored');
unlike($out, qr/MARKETS_PORT/, 'MARKETS_PORT (the scripts\' nginx port) draws no warning');
($rc, $out) = run({ MARKETS_WROKERS => '3', MARKETS_BUILD_DIR => '/x' }, '--config', $file, '--test-config');
is($rc, 0, 'an unknown MARKETS_WROKERS does not stop the start');
like($out, qr/"level":"warn".*environment variable MARKETS_WROKERS is not a setting/, 'but is a warning naming it') or diag($out);
unlike($out, qr/MARKETS_BUILD_DIR/, 'MARKETS_BUILD_DIR, on the allow-list, draws none');

# --dump-config: the effective settings, secrets redacted, readable again.
my $JWT = 'dump-config-jwt-secret-0123456789abcdef';
my $DBPW = 'dump-config-db-password-42';
my $secret_file = conf('jwt.secret', "$JWT\n");
my $dumping = conf('dump.conf', "workers = 3\nmax_body = 2m\njwt_secret = $JWT\ncursor_secret = \@$secret_file\n"
	. "db_password = $DBPW\nrequest_timeout = 1500ms\n");
($rc, $out) = run({ MARKETS_WORKERS => '5', MARKETS_RATE_LIMIT => '7/60' }, '--config', $dumping, '--dump-config');
is($rc, 0, '--dump-config exits 0') or diag($out);
my %dumped = map { /^(\w+) =(?: (.*))?$/ ? ($1 => $2 // '') : () } split /\n/, $out;
ok(!(grep { !/^(#.*|\w+ =( .+)?)$/ } split /\n/, $out), 'every line is a comment or "key = value"') or diag($out);
is($dumped{workers}, '5', 'the environment wins over the file (workers = 5)');
is($dumped{rate_limit}, '7/60', 'MARKETS_RATE_LIMIT is shown');
is($dumped{max_body}, '2m', 'the file\'s max_body');
is($dumped{request_timeout}, '1500ms', 'durations in their exact unit');
is($dumped{idle_timeout}, '75s', 'defaults are shown too');
is($dumped{jwt_secret}, '<redacted>', 'jwt_secret is redacted');
is($dumped{db_password}, '<redacted>', 'db_password is redacted');
is($dumped{cursor_secret}, "\@$secret_file", 'a secret read from a file shows the file');
unlike($out, qr/\Q$JWT\E|\Q$DBPW\E/, 'no secret appears anywhere in the dump');
my $again = conf('again.conf', $out =~ s/^(jwt_secret|db_password) = <redacted>$/$1 = \@$secret_file/mgr);
my ($rc2, $out2) = run({}, '--config', $again, '--dump-config');
is($rc2, 0, 'the dump (secrets pointed at a file) reads back as a configuration') or diag($out2);
is($out2 =~ s/^(jwt_secret|db_password) = .*$//mgr, $out =~ s/^(jwt_secret|db_password) = .*$//mgr,
	'and dumps the same settings again');

# A secret from a file that cannot be read stops the start: key and path named.
my $nosock = "$dir/never.sock";
($rc, $out) = run({ MARKETS_DB_PASSWORD => "\@$dir/no-such-secret", MARKETS_CURSOR_SECRET => $CURSOR },
	'--config', $file, '--listen', "unix:$nosock");
is($rc, 1, 'MARKETS_DB_PASSWORD=@missing-file: the app refuses to start');
like($out, qr/environment MARKETS_DB_PASSWORD: \@\Q$dir\E\/no-such-secret: No such file or directory/,
	'the message names the variable and the path') or diag($out);
ok(!-e $nosock, 'before any socket is opened');
my $bad_file = conf('bad-secret.conf', "jwt_secret = \@$dir/no-such-secret\n");
($rc, $out) = run({}, '--config', $bad_file, '--test-config');
like($out, qr/\Q$bad_file\E:1: jwt_secret: \@\Q$dir\E\/no-such-secret: No such file/, 'in a file: file, line, key and path')
	or diag($out);

# Without --listen and without a socket on fd 0 there is nothing to serve.
($rc, $out) = run({}, '--config', $file, '</dev/null');
is($rc, 2, 'no --listen and no FastCGI socket: usage error');
like($out, qr/fd 0 is not a FastCGI listening socket/, 'says why');

# Keys: the cursor MAC key never falls back to a built-in constant, and no
# public key (in any common form) is taken for a secret.
my $sock = "$dir/never.sock";
($rc, $out) = run({ MARKETS_CURSOR_SECRET => undef, MARKETS_JWT_SECRET => undef },
	'--config', "$repo/conf/markets.conf", '--listen', "unix:$sock");
is($rc, 1, 'neither cursor_secret nor jwt_secret: the app refuses to start');
like($out, qr/cursor_secret is not set \(nor jwt_secret/, 'and names cursor_secret') or diag($out);
ok(!-e $sock, 'before any socket is opened');
($rc, $out) = run({ MARKETS_JWT_SECRET => 'config-test-jwt-secret-0123456789abcdef' }, '--config', "$repo/conf/markets.conf", '--test-config');
is($rc, 0, 'jwt_secret alone: the cursor key is derived from it') or diag($out);
my $ssh = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILNaGghIv+DWCS/wLL+8q0o+6yfcHL3H8OHgEa2N+W5m ops@example';
my $jwk = '{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}';
my $b64der = 'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZIfio6Ue+c0vcraQuET76pVKMlUvycOFPA653VLWMtndDTXNczaNo73jlOpWk8edF3pBN3oSLs7qslU8AG6OxQ==';
for my $case ([MARKETS_JWT_SECRET => $ssh, 'HS256 key jwt_secret is an OpenSSH public key, not a secret'],
		[MARKETS_JWT_SECRET => $jwk, 'HS256 key jwt_secret is a JWK (JSON Web Key), not a secret'],
		[MARKETS_JWT_SECRET => $b64der, 'HS256 key jwt_secret is a base64 DER public key, not a secret'],
		[MARKETS_CURSOR_SECRET => $ssh, 'cursor_secret is an OpenSSH public key, not a secret']) {
	my ($var, $value, $want) = @$case;
	($rc, $out) = run({ MARKETS_CURSOR_SECRET => $CURSOR, $var => $value }, '--config', "$repo/conf/markets.conf", '--test-config');
	is($rc, 1, "$var a public key ($want): refused");
	like($out, qr/\Q$want\E/, "$var a public key: the message says what it is") or diag($out);
}
# base_path (docs/configuration.md, "Base path"), from the environment too.
for my $case (['/shop', 0, ''], ['/', 0, ''], ['/~demo/markets', 0, ''], ['/shop/', 1, "must not end with '/'"],
		['shop', 1, "must start with '/'"], ['/a/../b', 1, "has a '.' or '..' segment"], ['/a%20b', 1, 'may hold only'],
		['/a?b', 1, 'may hold only']) {
	my ($value, $want_rc, $want) = @$case;
	($rc, $out) = run({ MARKETS_CURSOR_SECRET => $CURSOR, MARKETS_BASE_PATH => $value }, '--config', "$repo/conf/markets.conf", '--test-config');
	is($rc, $want_rc, "MARKETS_BASE_PATH=$value: " . ($want_rc ? 'refused' : 'accepted')) or diag($out);
	like($out, qr/environment MARKETS_BASE_PATH: \Q$want\E/, "MARKETS_BASE_PATH=$value: the reason") or diag($out) if $want_rc;
}
($rc, $out) = run({ MARKETS_JWT_MAX_LIFETIME => '36000m' }, '--config', $file, '--test-config');
is($rc, 1, 'jwt_max_lifetime of 25 days: out of range');
like($out, qr/environment MARKETS_JWT_MAX_LIFETIME: out of range/, 'and is named') or diag($out);

# markets-admin token refuses a ttl the server would refuse.
my $admin = Markets::Test::build_dir() . '/markets-admin';
{
	local %ENV = (%ENV, MARKETS_JWT_SECRET => 'config-test-jwt-secret-0123456789abcdef');
	my $tok = `'$admin' --config '$file' token --sub 1 --role user --ttl 86400 2>&1`;
	is($? >> 8, 0, 'markets-admin token --ttl 86400 (the default jwt_max_lifetime): a token');
	like($tok, qr/^[\w-]+\.[\w-]+\.[\w-]+$/, 'and it is one') or diag($tok);
	my $long = `'$admin' --config '$file' token --sub 1 --role user --ttl 86401 2>&1`;
	is($? >> 8, 2, 'markets-admin token --ttl 86401: refused');
	like($long, qr/--ttl 86401 is longer than jwt_max_lifetime \(86400 s\)/, 'and says why') or diag($long);
}

# The environment really reaches the server: MARKETS_MAX_BODY shrinks the cap;
# MARKETS_JWT_SECRET=@file is the file's secret (its newline stripped).
# Under the mod_fcgid fronts the app runs as Apache's user (shared hosting:
# the site owner), not as root: this throwaway secret is readable by all.
chmod 0755, $dir;
chmod 0644, $secret_file;
my $t = Markets::Test->new(services => [qw(app nginx)],
	env => { MARKETS_MAX_BODY => '1k', MARKETS_JWT_SECRET => "\@$secret_file" });
my $r = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => '"' . ('x' x 2000) . '"' });
$t->is_error($r, 413, 'payload_too_large', 'MARKETS_MAX_BODY=1k: the app answers 413');
my $now = time;
my $signed = $t->jws(payload => { sub => '7', role => 'user', iat => $now, exp => $now + 600 }, key => $JWT);
$r = $t->get('/api/me', { headers => { Authorization => "Bearer $signed" } });
is($r->{status}, 200, 'MARKETS_JWT_SECRET=@file: a token signed with the file\'s secret is taken');
is($r->{json}{data}{id}, 7, 'and names its caller');
my $forged = $t->jws(payload => { sub => '7', role => 'user', iat => $now, exp => $now + 600 }, key => "\@$secret_file");
is($t->get('/api/me', { headers => { Authorization => "Bearer $forged" } })->{status}, 401,
	'one signed with the text "@path" is not');
$t->finish;
done_testing;
