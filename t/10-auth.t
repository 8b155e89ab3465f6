#!/usr/bin/perl
# Bearer-token authentication through the front (API.md "Auth"): GET /api/me
# answers the caller's id, role, email and permissions for a valid HS256,
# RS256 or ES256 token; no token is a 401 with a bare "Bearer" challenge; a
# bad token — each rule of src/auth/jwt.h broken once — is a 401
# invalid_token on every route, public ones included, whose body never
# says which check failed while the access log line does. Keys rotate by
# kid through jwt_keys_dir and SIGHUP; iss/aud are checked when configured;
# a reload with an unreadable key is refused and the workers keep going.
# (Reloads are SIGHUP to the master: under mod_fcgid, where Apache starts
# the app's processes and there is none, those parts are skipped.)
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(hmac_sha256 hmac_sha512);
use File::Temp qw(tempdir);
use JSON::PP;
use MIME::Base64 qw(encode_base64url);
use Test::More;
use Markets::FastCGI;
use Markets::Test;

my $NOW = int time;
my $HIGH = '1000000/60'; # the auth tests send many bad tokens from one address
my $work = tempdir('markets-auth-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{MARKETS_KEEP_TMP});
# Under the mod_fcgid fronts the app runs as Apache's user (or the site
# owner), not root: the key files must be readable to it.
chmod 0755, $work;

# Stacks are kept until the end (a test that dies still has them stopped
# by the harness's END block).
my @stacks;
sub stack { my $s = Markets::Test->new(@_); push @stacks, $s; return $s }

sub spew {
	my ($path, $text) = @_;
	open my $fh, '>', $path or die "$path: $!";
	binmode $fh;
	print $fh $text;
	close $fh or die "$path: $!";
}

sub h { Markets::Test::header(@_) }
sub b64 { encode_base64url($_[0]) }
sub canon { ref $_[0] ? JSON::PP->new->canonical->encode($_[0]) : $_[0] }

# Claims of a valid token, with overrides; an undef override drops the claim.
sub claims {
	my (%over) = @_;
	my $now = int time;
	my %c = (sub => '1', role => 'user', iat => $now, exp => $now + 3600, %over);
	delete @c{ grep { !defined $c{$_} } keys %c };
	return \%c;
}

# header.payload (JSON text or hashes), HMAC-SHA256 with key (raw signature
# bytes when sig is given).
sub hs {
	my (%a) = @_;
	my $signing = b64(canon($a{header} // { alg => 'HS256', typ => 'JWT' })) . '.' . b64(canon($a{payload} // claims()));
	my $sig = exists $a{sig} ? $a{sig} : hmac_sha256($signing, $a{key});
	return "$signing." . b64($sig);
}

# GET path with an Authorization header (undef: none).
sub get_auth {
	my ($t, $path, $auth) = @_;
	return $t->get($path, { headers => defined $auth ? { Authorization => $auth } : {} });
}

sub accepted {
	my ($t, $name, $token, $sub) = @_;
	my $r = get_auth($t, '/api/me', "Bearer $token");
	is($r->{status}, 200, "$name: 200") or diag($r->{content});
	is($r->{json} && $r->{json}{data}{id}, $sub, "$name: the caller is sub $sub") if defined $sub;
	return $r;
}

# A 401 invalid_token whose body names no check and whose log line does.
sub refused_auth {
	my ($t, $name, $auth, $why, $path) = @_;
	my $r = get_auth($t, $path // '/api/me', $auth);
	$t->is_error($r, 401, 'unauthorized', $name);
	is(h($r, 'WWW-Authenticate'), 'Bearer error="invalid_token"', "$name: WWW-Authenticate invalid_token");
	is($r->{json} && $r->{json}{error}, 'Invalid token', "$name: the body says only 'Invalid token'");
	my $line = $t->access_line(h($r, 'X-Request-Id') // '');
	like($line && $line->{error} // '', $why, "$name: the log names the check");
	ok($line && defined $line->{error} && index($r->{content}, $line->{error}) < 0, "$name: the body does not")
		if $line && defined $line->{error};
	ok(!exists $line->{user}, "$name: no user logged") if $line;
	return $r;
}
sub refused { my ($t, $name, $token, $why, $path) = @_; refused_auth($t, $name, "Bearer $token", $why, $path) }

sub workers_replaced {
	my ($t, $old, $name) = @_;
	my %old = map { $_ => 1 } @$old;
	ok($t->wait_until(20, sub { my @w = $t->worker_pids; @w >= 2 && !grep { $old{$_} } @w }),
		"$name: a new generation of workers replaced the old one");
}

# --- HS256, with two more keys in jwt_keys_dir ---------------------------------

my $keys = "$work/keys";
mkdir $keys or die "$keys: $!";
my %kid = (k1 => 'first-rotation-secret-' . ('1' x 24), k2 => 'second-rotation-secret-' . ('2' x 24));
spew("$keys/$_", "$kid{$_}\n") for sort keys %kid;
my $conf = "jwt_keys_dir = $keys\n";
my $t = stack(services => [qw(memcached app nginx)], env => { MARKETS_RATE_LIMIT => $HIGH },
	local_conf => $conf);
my $secret = $t->secret;
sub tok { hs(payload => claims(@_), key => $secret) }

# /api/me for each role; sub as a digit string and as a number; email or null.
my @who = (
	[user => { sub => '42', email => 'u@example.com' }, 42, 'u@example.com', [qw(read write)]],
	[moderator => { sub => 7 }, 7, undef, [qw(read write delete)]],
	[admin => { sub => 9007199254740991, email => 'root@example.com', name => 'Root' }, 9007199254740991,
		'root@example.com', [qw(read write delete admin)]],
);
for my $w (@who) {
	my ($role, $c, $id, $email, $perms) = @$w;
	my $r = get_auth($t, '/api/me', 'Bearer ' . tok(role => $role, %$c));
	is($r->{status}, 200, "$role: GET /api/me 200") or diag($r->{content});
	is_deeply($r->{json}, { success => JSON::PP::true, data => { id => $id, role => $role, email => $email, permissions => $perms } },
		"$role: id, role, email, permissions");
	like($r->{content}, qr/"id":$id[,}]/, "$role: id is a JSON integer");
	is(h($r, 'Cache-Control'), 'private, no-store', "$role: Cache-Control private, no-store");
	like(h($r, 'Content-Type'), qr{^application/json; charset=utf-8$}, "$role: JSON content type");
	my $line = $t->access_line(h($r, 'X-Request-Id'));
	is($line && $line->{user}, $id, "$role: the access line names the user");
	ok($line && !exists $line->{error}, "$role: no error logged");
}
my $low = get_auth($t, '/api/me', 'bearer ' . tok(sub => '5'));
is($low->{status}, 200, 'lowercase "bearer <token>": 200');
is(get_auth($t, '/api/me', 'BEARER ' . tok(sub => '5'))->{status}, 200, 'upper-case "BEARER <token>": 200');

# No token: 401 with a bare challenge; a public route stays anonymous.
my $none = get_auth($t, '/api/me', undef);
$t->is_error($none, 401, 'unauthorized', 'GET /api/me without a token');
is(h($none, 'WWW-Authenticate'), 'Bearer', 'no token: WWW-Authenticate is exactly "Bearer"');
my $anon = get_auth($t, '/healthz', undef);
is($anon->{status}, 200, 'GET /healthz without a token: 200');
my $anon_line = $t->access_line(h($anon, 'X-Request-Id'));
ok($anon_line && !exists $anon_line->{user} && !exists $anon_line->{error}, '/healthz without a token is anonymous');
is(get_auth($t, '/healthz', 'Bearer ' . tok())->{status}, 200, 'GET /healthz with a valid token: 200');

# A bad token is a 401 on public routes too; an unknown route is a 404 first.
my $forged = hs(payload => claims(), key => 'x' x 40);
refused($t, 'GET /healthz with a badly signed token', $forged, qr/bad signature/, '/healthz');
refused($t, 'GET /healthz with a malformed token', 'abc', qr/three segments/, '/healthz');
$t->is_error(get_auth($t, '/nope', "Bearer $forged"), 404, 'not_found', 'GET /nope with a bad token (routing comes first)');

# Every rule of jwt.h, broken once (each otherwise a valid, signed token).
my $hdr = { alg => 'HS256', typ => 'JWT' };
my $ALPHABET = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';
my $good = tok();
my ($gh, $gp, $gs) = split /\./, $good;
my $admin = tok(role => 'admin', sub => '2');
my (undef, $ap) = split /\./, $admin;
my $exp_text = $NOW + 3600;
my $body = sub { my $extra = shift; qq({"sub":"1","role":"user","iat":$NOW,$extra}) };
# A token whose signature has a '-' or '_', to write them as '+' and '/'.
my ($plus) = grep { /[-_][^.]*$/ } map { tok(n => $_) } 1 .. 200;
(my $std = $plus) =~ tr{-_}{+/};
# A header whose base64url has a partial last group, then padded.
my $hpad_json = '{"alg":"HS256","typ":"JWT","x":12}';
my $hpad = b64($hpad_json);
$hpad .= '=' x ((4 - length($hpad) % 4) % 4);
die 'header needs padding' if $hpad !~ /=$/;
my $hpad_tok = "$hpad.$gp";
$hpad_tok .= '.' . b64(hmac_sha256($hpad_tok, $secret));

my @bad = (
	['alg none, empty signature', hs(header => { alg => 'none', typ => 'JWT' }, sig => ''), qr/empty segment/],
	['alg None, empty signature', hs(header => { alg => 'None' }, sig => ''), qr/empty segment/],
	['alg NONE, empty signature', hs(header => { alg => 'NONE' }, sig => ''), qr/empty segment/],
	['alg none, with an HMAC', hs(header => { alg => 'none' }, key => $secret), qr/alg/],
	['alg hs256 (case)', hs(header => { alg => 'hs256' }, key => $secret), qr/alg/],
	['alg HS512 with an HMAC-SHA512',
		do { my $s = b64(canon({ alg => 'HS512', typ => 'JWT' })) . ".$gp"; "$s." . b64(hmac_sha512($s, $secret)) }, qr/alg/],
	['alg RS256 with an HMAC signature', hs(header => { alg => 'RS256', typ => 'JWT' }, key => $secret), qr/alg/],
	['no alg', hs(header => { typ => 'JWT' }, key => $secret), qr/alg/],
	['typ JWS', hs(header => { alg => 'HS256', typ => 'JWS' }, key => $secret), qr/typ/],
	['header an array', hs(header => '["HS256"]', key => $secret), qr/header is not a JSON object/],
	['expired 40 s ago (beyond the 30 s leeway)', tok(exp => $NOW - 40), qr/expired/],
	['expired an hour ago', tok(exp => $NOW - 3600), qr/expired/],
	['no exp', tok(exp => undef), qr/exp missing/],
	['exp a string', tok(exp => "$exp_text"), qr/not an integer/],
	['exp a float', hs(payload => $body->(qq("exp":$exp_text.5)), key => $secret), qr/not an integer/],
	['exp 4e9 in exponent form', hs(payload => $body->(q("exp":4e9)), key => $secret), qr/not an integer/],
	['exp 1e400', hs(payload => $body->(q("exp":1e400)), key => $secret), qr/not an integer/],
	['exp 2**53', tok(exp => 9007199254740992), qr/out of range/],
	['exp 2**64 (beyond int64)', hs(payload => $body->(q("exp":18446744073709551616)), key => $secret), qr/not an integer/],
	['exp negative', tok(exp => -1), qr/out of range/],
	['exp null', hs(payload => $body->(q("exp":null)), key => $secret), qr/not an integer/],
	['nbf an hour ahead', tok(nbf => $NOW + 3600), qr/nbf/],
	['iat an hour ahead', tok(iat => $NOW + 3600), qr/iat/],
	['iat a float', hs(payload => qq({"sub":"1","role":"user","exp":$exp_text,"iat":$NOW.0}), key => $secret), qr/not an integer/],
	['signed with another key', $forged, qr/bad signature/],
	['a payload under another token\'s signature', "$gh.$ap.$gs", qr/bad signature/],
	['signature one bit off', do { my $s = hmac_sha256("$gh.$gp", $secret); substr($s, 0, 1) ^= "\x01"; "$gh.$gp." . b64($s) }, qr/bad signature/],
	['truncated signature', "$gh.$gp." . b64(substr(hmac_sha256("$gh.$gp", $secret), 0, 31)), qr/wrong length/],
	['two segments', "$gh.$gp", qr/three segments/],
	['four segments', "$good.$gs", qr/three segments/],
	['only dots', '..', qr/empty segment/],
	['empty header', ".$gp.$gs", qr/empty segment/],
	['empty payload', "$gh..$gs", qr/empty segment/],
	['empty signature', "$gh.$gp.", qr/empty segment/],
	['"=" padding on the signature', "$good=", qr/signature is not canonical/],
	['"=" padding on the header', $hpad_tok, qr/header is not canonical/],
	['"+" and "/" instead of "-" and "_"', $std, qr/not canonical/],
	['a blank inside the header', substr($gh, 0, 5) . ' ' . substr($gh, 5) . ".$gp.$gs", qr/header is not canonical/],
	['a tab inside the signature', "$gh.$gp." . substr($gs, 0, 9) . "\t" . substr($gs, 9), qr/signature is not canonical/],
	['non-zero pad bits in the signature (same bytes)', "$gh.$gp." . substr($gs, 0, -1) . substr($ALPHABET, index($ALPHABET, substr($gs, -1)) + 1, 1), qr/signature is not canonical/],
	['a duplicated claim (role twice)', hs(payload => $body->(qq("exp":$exp_text,"role":"admin")), key => $secret), qr/payload is not strict JSON/],
	['a duplicated header member (alg twice)', hs(header => '{"alg":"HS256","alg":"HS256"}', key => $secret), qr/header is not strict JSON/],
	['role "user\u0000x"', hs(payload => qq({"sub":"1","role":"user\\u0000x","exp":$exp_text}), key => $secret), qr/payload is not strict JSON/],
	['invalid UTF-8 in a claim', hs(payload => qq({"sub":"1","role":"user","exp":$exp_text,"name":"\xff"}), key => $secret), qr/payload is not strict JSON/],
	['payload not JSON', hs(payload => 'sub=1', key => $secret), qr/payload is not strict JSON/],
	['payload an array', hs(payload => '[1]', key => $secret), qr/payload is not a JSON object/],
	['unknown role "root"', tok(role => 'root'), qr/role/],
	['role "Admin" (case)', tok(role => 'Admin'), qr/role/],
	['no role', tok(role => undef), qr/role/],
	['sub 0', tok(sub => 0), qr/sub/],
	['sub "0"', tok(sub => '0'), qr/sub/],
	['sub "abc"', tok(sub => 'abc'), qr/sub/],
	['sub -1', tok(sub => -1), qr/sub/],
	['sub "-1"', tok(sub => '-1'), qr/sub/],
	['sub "007"', tok(sub => '007'), qr/sub/],
	['sub ""', tok(sub => ''), qr/sub/],
	['sub 1.5', hs(payload => qq({"sub":1.5,"role":"user","exp":$exp_text}), key => $secret), qr/sub/],
	['sub 2**53', tok(sub => 9007199254740992), qr/sub/],
	['sub "9007199254740992" (2**53 as a string)', tok(sub => '9007199254740992'), qr/sub/],
	['sub of 19 digits as a string', tok(sub => '1234567890123456789'), qr/sub/],
	['no sub', tok(sub => undef), qr/sub/],
	['crit ["exp"]', hs(header => { %$hdr, crit => ['exp'] }, key => $secret), qr/refused member/],
	['b64 false', hs(header => { %$hdr, b64 => JSON::PP::false }, key => $secret), qr/refused member/],
	['cty JWT (nested)', hs(header => { %$hdr, cty => 'JWT' }, key => $secret), qr/refused member/],
	['kid "nope"', hs(header => { %$hdr, kid => 'nope' }, key => $secret), qr/kid names no key/],
	['kid "../../etc/passwd"', hs(header => { %$hdr, kid => '../../etc/passwd' }, key => $secret), qr/kid is not a key id/],
	[q(kid "1' OR '1'='1"), hs(header => { %$hdr, kid => q(1' OR '1'='1) }, key => $secret), qr/kid is not a key id/],
	['kid a number', hs(header => { %$hdr, kid => 1 }, key => $secret), qr/kid is not a key id/],
	['jku header, valid signature', hs(header => { %$hdr, jku => 'https://evil.example/jwks.json' }, key => $secret), qr/refused member/],
	['x5u header, valid signature', hs(header => { %$hdr, x5u => 'https://evil.example/cert.pem' }, key => $secret), qr/refused member/],
	['jwk header, valid signature', hs(header => { %$hdr, jwk => { kty => 'oct', k => b64('x' x 32) } }, key => $secret), qr/refused member/],
	['aud while no audience is configured', tok(aud => 'markets-api'), qr/aud/],
	['email not a string', tok(email => 5), qr/email/],
	['name longer than 200', tok(name => 'n' x 201), qr/email or name/],
);
refused($t, $_->[0], $_->[1], $_->[2]) for @bad;
# Schemes and shapes of the Authorization header itself. Another scheme
# (Basic, a bare token, "Bearer" glued to the token) sends no bearer token:
# the caller is anonymous — served on a public route, and on a protected one
# a 401 with a plain Bearer challenge (RFC 6750 3.1: no error code). A Bearer
# scheme with no token is a malformed token: invalid_token.
for my $c (['Basic credentials', 'Basic dXNlcjpwdw=='], ['a bare token', $good], ['"Bearer" glued to the token', "Bearer$good"]) {
	my ($name, $auth) = @$c;
	my $r = get_auth($t, '/api/me', $auth);
	$t->is_error($r, 401, 'unauthorized', $name);
	is(h($r, 'WWW-Authenticate'), 'Bearer', "$name: a bare \"Bearer\" challenge (no token was sent)");
	is($r->{json} && $r->{json}{error}, 'Authentication required', "$name: asks for authentication");
	my $public = get_auth($t, '/healthz', $auth);
	is($public->{status}, 200, "$name on a public route: anonymous, 200");
}
refused_auth($t, '"Bearer" with nothing after it', 'Bearer', qr/Bearer without a token/);
refused_auth($t, '"Bearer" and blanks only', 'Bearer   ', qr/Bearer without a token/);
refused_auth($t, '"Bearer" and two tokens', "Bearer $good $good", qr/three segments/);

# The edges that pass: within the leeway, the largest exp, a token just under
# what the front lets through (the app allows 8 KiB).
accepted($t, 'expired 10 s ago (within the leeway)', tok(sub => '11', exp => int(time) - 10), 11);
accepted($t, 'nbf 10 s ahead (within the leeway)', tok(sub => '12', nbf => int(time) + 10), 12);
accepted($t, 'iat 10 s ahead (within the leeway)', tok(sub => '13', iat => int(time) + 10), 13);
refused($t, 'exp 2**53 - 1 (exp - iat beyond jwt_max_lifetime)', tok(sub => '14', exp => 9007199254740991), qr/lifetime/);
# jwt_max_lifetime (24 h by default): exp - iat, or exp - now without iat.
{
	my $now = int time;
	accepted($t, 'a token of exactly 24 h', tok(sub => '17', iat => $now, exp => $now + 86400), 17);
	refused($t, 'a token of 24 h and 1 s', tok(sub => '17', iat => $now, exp => $now + 86401), qr/lifetime \(exp - iat\) longer than jwt_max_lifetime/);
	refused($t, 'a 30-day token', tok(sub => '17', iat => $now, exp => $now + 30 * 86400), qr/jwt_max_lifetime/);
	refused($t, 'no iat, exp 2 days ahead', tok(sub => '17', iat => undef, exp => $now + 2 * 86400), qr/without iat expires later than jwt_max_lifetime/);
	accepted($t, 'no iat, exp an hour ahead', tok(sub => '18', iat => undef), 18);
}
accepted($t, 'sub "9007199254740991" (2**53 - 1 as a string)', tok(sub => '9007199254740991'), 9007199254740991);
accepted($t, 'typ "at+jwt"', hs(header => { alg => 'HS256', typ => 'at+jwt' }, payload => claims(sub => '15'), key => $secret), 15);
accepted($t, 'iss present while none is configured', tok(sub => '16', iss => 'https://anyone.example'), 16);

# A valid token of exactly $len bytes: padded with an extra claim, and a
# header member to reach the lengths base64 skips.
sub token_of_length {
	my ($len, %c) = @_;
	for my $hx (0 .. 3) {
		my $header = { %$hdr, x => 'h' x $hx };
		for (my $pad = $len > 400 ? int(($len - 400) * 3 / 4) : 0; ; $pad++) {
			my $tok = hs(header => $header, payload => claims(%c, pad => 'p' x $pad), key => $secret);
			return $tok if length $tok == $len;
			last if length $tok > $len;
		}
	}
	return '';
}
my $big = token_of_length(8100, sub => '17');
is(length $big, 8100, 'a token of 8100 bytes');
accepted($t, 'a token of ~8100 bytes through the front', $big, 17);
my $huge = tok(sub => '18', pad => 'p' x 7000);
my $huge_r = get_auth($t, '/api/me', "Bearer $huge");
if ($t->front eq 'nginx') {
	$t->is_error($huge_r, 431, 'headers_too_large', 'a 9 KiB token: nginx answers 431');
} elsif ($t->front eq 'shared-hosting') {
	# Refused while Apache reads the headers, before the site's .htaccess:
	# the host's own page (t/01-errors.t).
	is($huge_r->{status}, 400, "a 9 KiB token: Apache's 400 (LimitRequestFieldSize), the host's own page");
} else {
	$t->is_error($huge_r, 400, 'bad_request', "a 9 KiB token: Apache answers 400 (LimitRequestFieldSize)");
}

# The app's own 8 KiB cap, straight on its socket (the fronts' header
# limits are under the cap, so no front ever sends such a token).
SKIP: {
skip 'no app socket to speak FastCGI to: under mod_fcgid Apache hands each process its own', 7 if $t->mod_fcgid;
sub fcgi_me {
	my ($token, $rid) = @_;
	my $r = Markets::FastCGI->simple($t->app_socket, params => {
		REQUEST_URI => '/api/me', HTTP_AUTHORIZATION => "Bearer $token", HTTP_X_REQUEST_ID => $rid });
	return $r;
}
my $at_cap = token_of_length(8192, sub => '19');
is(length $at_cap, 8192, 'a token of exactly 8192 bytes');
is(fcgi_me($at_cap, 'auth-cap-8192')->{status}, 200, 'FastCGI: a valid token of 8192 bytes is accepted');
my $over = token_of_length(8193, sub => '19');
is(length $over, 8193, 'a token of 8193 bytes');
my $r8193 = fcgi_me($over, 'auth-cap-8193');
is($r8193->{status}, 401, 'FastCGI: a valid token of 8193 bytes is refused');
like($r8193->{headers}{'www-authenticate'} // '', qr/invalid_token/, 'FastCGI: 8193 bytes: invalid_token');
my $cap_line = $t->access_line('auth-cap-8193');
like($cap_line && $cap_line->{error} // '', qr/longer than 8 KiB/, 'FastCGI: 8193 bytes: the log says too long');
}

# --- iss and aud, configured by a reload ----------------------------------------

SKIP: {
skip 'iss/aud are configured by a reload, SIGHUP to the master: under mod_fcgid there is none', 1 if $t->mod_fcgid;
my @old = $t->worker_pids;
$t->write_local_conf("$conf" . "jwt_issuer = https://issuer.example\njwt_audience = markets-api\n");
kill 'HUP', $t->master_pid;
workers_replaced($t, \@old, 'iss/aud reload');
my %ia = (iss => 'https://issuer.example', aud => 'markets-api');
ok($t->wait_until(10, sub { get_auth($t, '/api/me', 'Bearer ' . tok(sub => '20'))->{status} == 401 }),
	'after the reload a token without iss/aud is refused');
accepted($t, 'iss and aud as configured', tok(sub => '21', %ia), 21);
accepted($t, 'aud an array naming this service', tok(sub => '22', %ia, aud => ['other-api', 'markets-api']), 22);
refused($t, 'wrong iss', tok(%ia, iss => 'https://evil.example'), qr/iss/);
refused($t, 'iss differing in case', tok(%ia, iss => 'https://ISSUER.example'), qr/iss/);
refused($t, 'no iss', tok(%ia, iss => undef), qr/iss/);
refused($t, 'wrong aud', tok(%ia, aud => 'other-api'), qr/aud/);
refused($t, 'no aud', tok(%ia, aud => undef), qr/aud/);
refused($t, 'aud an array without this service', tok(%ia, aud => ['a', 'b']), qr/aud/);
refused($t, 'aud an array with a non-string', tok(%ia, aud => ['markets-api', 1]), qr/aud/);
refused($t, 'aud a number', tok(%ia, aud => 1), qr/aud/);

@old = $t->worker_pids;
$t->write_local_conf($conf);
kill 'HUP', $t->master_pid;
workers_replaced($t, \@old, 'back to no iss/aud');
ok($t->wait_until(10, sub { get_auth($t, '/api/me', 'Bearer ' . tok(sub => '30'))->{status} == 200 }),
	'after the reload plain tokens pass again');
}

# --- key rotation: kid picks a file of jwt_keys_dir --------------------------------

sub kid_tok { my ($kid, $key, %c) = @_; hs(header => { %$hdr, kid => $kid }, payload => claims(%c), key => $key) }
accepted($t, 'kid k1', kid_tok(k1 => $kid{k1}, sub => '31'), 31);
accepted($t, 'kid k2', kid_tok(k2 => $kid{k2}, sub => '32'), 32);
accepted($t, 'no kid: jwt_secret', tok(sub => '33'), 33);
refused($t, 'kid k1 signed with k2\'s secret', kid_tok(k1 => $kid{k2}), qr/bad signature/);
refused($t, 'kid k2 signed with jwt_secret', kid_tok(k2 => $secret), qr/bad signature/);
refused($t, 'no kid, signed with k1\'s secret', hs(payload => claims(), key => $kid{k1}), qr/bad signature/);

SKIP: {
skip 'a key is retired by a reload, SIGHUP to the master: under mod_fcgid there is none', 1 if $t->mod_fcgid;
unlink "$keys/k1" or die "unlink: $!";
my @old = $t->worker_pids;
$t->write_local_conf($conf);
kill 'HUP', $t->master_pid;
workers_replaced($t, \@old, 'k1 removed');
ok($t->wait_until(10, sub { get_auth($t, '/api/me', 'Bearer ' . kid_tok(k1 => $kid{k1}))->{status} == 401 }),
	'after removing k1 and SIGHUP, kid k1 is refused');
refused($t, 'kid k1 after its removal', kid_tok(k1 => $kid{k1}), qr/kid names no key/) for 1 .. 3;
accepted($t, "kid k2 after k1's removal", kid_tok(k2 => $kid{k2}, sub => '34'), 34) for 1 .. 3;
}

$t->finish;

# --- RS256 and ES256 ---------------------------------------------------------------

sub openssl {
	my @args = @_;
	system('openssl', @args) == 0 or BAIL_OUT("openssl @args failed");
}
sub slurp { Markets::Test::slurp(@_) }

# Signs data with a PEM private key (SHA-256); returns openssl's raw output.
my $n_sig = 0;
sub pk_sign {
	my ($key, $data) = @_;
	my $in = "$work/in" . ++$n_sig;
	spew($in, $data);
	openssl('dgst', '-sha256', '-sign', $key, '-out', "$in.sig", $in);
	return slurp("$in.sig");
}

# An ECDSA DER SEQUENCE { INTEGER r, INTEGER s } as the JWS r || s (32 bytes each).
sub der_to_rs {
	my ($der) = @_;
	my ($tag, $len) = unpack 'CC', $der;
	die 'not a DER sequence' unless $tag == 0x30 && $len < 0x80 && $len == length($der) - 2;
	my ($pos, $out) = (2, '');
	for (1 .. 2) {
		my ($itag, $ilen) = unpack "x${pos}CC", $der;
		die 'not a DER integer' unless $itag == 0x02;
		(my $v = substr($der, $pos + 2, $ilen)) =~ s/^\x00+//;
		die 'integer too long' if length $v > 32;
		$out .= ("\0" x (32 - length $v)) . $v;
		$pos += 2 + $ilen;
	}
	return $out;
}

sub pk_tok {
	my ($alg, $key, %a) = @_;
	my $signing = b64(canon($a{header} // { alg => $alg, typ => 'JWT' })) . '.' . b64(canon($a{payload} // claims()));
	my $sig = pk_sign($key, $signing);
	$sig = der_to_rs($sig) if $alg eq 'ES256' && !$a{der};
	return "$signing." . b64($sig);
}

openssl('genpkey', '-quiet', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$work/rsa.pem");
openssl('pkey', '-in', "$work/rsa.pem", '-pubout', '-out', "$work/rsa.pub");
openssl('genpkey', '-quiet', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$work/rsa2.pem");
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$work/ec.pem");
openssl('pkey', '-in', "$work/ec.pem", '-pubout', '-out', "$work/ec.pub");
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$work/ec2.pem");

# Without jwt_secret there is nothing to derive the cursor key from: these
# stacks need a cursor_secret of their own, or the app refuses to start.
my $CURSOR_SECRET = 'auth-test-cursor-secret-0123456789abcdef';
my $rs = stack(services => [qw(app nginx)],
	env => { MARKETS_JWT_ALG => 'RS256', MARKETS_JWT_PUBLIC_KEY => "$work/rsa.pub", MARKETS_JWT_SECRET => '',
		MARKETS_CURSOR_SECRET => $CURSOR_SECRET, MARKETS_RATE_LIMIT => $HIGH });
my $pem = slurp("$work/rsa.pub");
for my $role (qw(user moderator admin)) {
	my $r = accepted($rs, "RS256 $role", pk_tok(RS256 => "$work/rsa.pem", payload => claims(sub => '40', role => $role)), 40);
	is($r->{json} && $r->{json}{data}{role}, $role, "RS256 $role: the role");
}
refused($rs, 'RS256: HS256 signed with the public key PEM', hs(payload => claims(), key => $pem), qr/alg/);
refused($rs, 'RS256 header, HMAC with the public key PEM',
	hs(header => { alg => 'RS256', typ => 'JWT' }, payload => claims(), key => $pem), qr/wrong length/);
refused($rs, 'RS256 signed by another RSA key', pk_tok(RS256 => "$work/rsa2.pem"), qr/bad signature/);
refused($rs, 'RS256: payload swapped', do {
	my ($h, undef, $s) = split /\./, pk_tok(RS256 => "$work/rsa.pem");
	my (undef, $p) = split /\./, pk_tok(RS256 => "$work/rsa.pem", payload => claims(role => 'admin'));
	"$h.$p.$s" }, qr/bad signature/);
refused($rs, 'RS256: alg none', hs(header => { alg => 'none' }, sig => ''), qr/empty segment/);
refused($rs, 'RS256: expired', pk_tok(RS256 => "$work/rsa.pem", payload => claims(exp => $NOW - 3600)), qr/expired/);
refused($rs, 'RS256: ES256 header', pk_tok(ES256 => "$work/ec.pem"), qr/alg/);
$rs->finish;

# ES256: the key file from a config file, so that a reload can change it.
my $es = stack(services => [qw(app nginx)],
	env => { MARKETS_JWT_ALG => 'ES256', MARKETS_JWT_SECRET => '', MARKETS_CURSOR_SECRET => $CURSOR_SECRET,
		MARKETS_RATE_LIMIT => $HIGH },
	local_conf => "jwt_public_key = $work/ec.pub\n");
my $es_ok = pk_tok(ES256 => "$work/ec.pem", payload => claims(sub => '50', role => 'moderator'));
my $es_r = accepted($es, 'ES256 moderator', $es_ok, 50);
is_deeply($es_r->{json} && $es_r->{json}{data}{permissions}, [qw(read write delete)], 'ES256: moderator permissions');
accepted($es, 'ES256 user, another signature', pk_tok(ES256 => "$work/ec.pem", payload => claims(sub => '51')), 51);
my ($eh, $ep, $esig) = split /\./, $es_ok;
refused($es, 'ES256 with the DER signature openssl writes',
	pk_tok(ES256 => "$work/ec.pem", der => 1), qr/wrong length/);
refused($es, 'ES256 with 64 zero bytes', "$eh.$ep." . b64("\0" x 64), qr/bad signature/);
my $order = pack 'H*', 'FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551';
my $rs_raw = MIME::Base64::decode_base64url($esig);
refused($es, 'ES256 with r = n (out of range)', "$eh.$ep." . b64($order . substr($rs_raw, 32)), qr/bad signature/);
refused($es, 'ES256 with r and s swapped', "$eh.$ep." . b64(substr($rs_raw, 32) . substr($rs_raw, 0, 32)), qr/bad signature/);
refused($es, 'ES256 signed by another P-256 key', pk_tok(ES256 => "$work/ec2.pem"), qr/bad signature/);
refused($es, 'ES256: HS256 signed with the public key PEM', hs(payload => claims(), key => slurp("$work/ec.pub")), qr/alg/);
refused($es, 'ES256: RS256 header', pk_tok(RS256 => "$work/rsa.pem"), qr/alg/);

# A reload naming a key file that is not there is refused; the workers keep
# verifying with the key they have.
SKIP: {
skip 'a refused reload keeps the running workers: SIGHUP to the master, under mod_fcgid there is none', 1 if $es->mod_fcgid;
my @es_workers = $es->worker_pids;
$es->write_local_conf("jwt_public_key = $work/missing.pub\n");
kill 'HUP', $es->master_pid;
sub logged { my ($t, $re) = @_; grep { ($_->{msg} // '') =~ $re } $t->log_lines }
ok($es->wait_until(10, sub { logged($es, qr/reload refused.*\Q$work\E\/missing\.pub/) }),
	'a reload with a missing jwt_public_key is refused, naming the file')
	or diag(join "\n", $es->log_text_lines);
is_deeply([$es->worker_pids], \@es_workers, 'the running workers are kept');
accepted($es, 'ES256 after the refused reload', pk_tok(ES256 => "$work/ec.pem", payload => claims(sub => '52')), 52);
refused($es, 'ES256 after the refused reload: still checked', pk_tok(ES256 => "$work/ec2.pem"), qr/bad signature/);
# And one with an RSA key where ES256 needs P-256.
$es->write_local_conf("jwt_public_key = $work/rsa.pub\n");
kill 'HUP', $es->master_pid;
ok($es->wait_until(10, sub { logged($es, qr/reload refused.*P-256/) }),
	'a reload with an RSA key for ES256 is refused');
is_deeply([$es->worker_pids], \@es_workers, 'the running workers are kept again');
accepted($es, 'ES256 after the second refused reload', pk_tok(ES256 => "$work/ec.pem", payload => claims(sub => '53')), 53);
}
$es->finish;

done_testing;
