#!/usr/bin/perl
# Every error a client can provoke before any handler runs, through the
# front: the contract's JSON envelope with the right status and code,
# whether the app or the front server itself answered — never HTML, never
# a crash. Where the front server decides differently (Apache: a NUL in
# the path is its 404, a header over its limit its 400, an unreachable
# backend its 503), the test says so; under shared hosting the errors
# Apache raises before it reads the site's .htaccess are the host's own
# pages, which the site cannot change: only their status is checked.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(services => [qw(app nginx)]);
my $json = { 'Content-Type' => 'application/json' };
my $apache = $t->front ne 'nginx';
my $host = $t->front eq 'shared-hosting';

# An error the front server raises itself while it reads the request.
sub front_error {
	my ($r, $status, $code, $name) = @_;
	return is($r->{status}, $status, "$name: status $status (the host's own page)") if $host;
	return $t->is_error($r, $status, $code, $name);
}

# 404: unknown routes, including near misses of known ones.
# (Under a base path Apache merges "//" before the app sees PATH_INFO:
# /~u/markets//healthz is the app's /healthz there.)
for my $path ('/nope', '/healthz/', '/healthz/x', $t->base_path ? () : '//healthz', '/HEALTHZ', '/api') {
	$t->is_error($t->get($path), 404, 'not_found', "GET $path");
}
# (Apache refuses an encoded slash itself unless AllowEncodedSlashes: the
# shipped vhosts allow it, a host's server config may not.)
front_error($t->get('/healthz%2F'), 404, 'not_found', 'GET /healthz%2F');

# 405 with Allow on a known path; OPTIONS answers 204 with the same Allow.
for my $method (qw(POST PUT PATCH DELETE)) {
	my $r = $t->request($method, '/healthz', { headers => $json, content => '{}' });
	$t->is_error($r, 405, 'method_not_allowed', "$method /healthz");
	is(Markets::Test::header($r, 'Allow'), 'GET, HEAD, OPTIONS', "$method /healthz: Allow");
}
my $o = $t->request('OPTIONS', '/healthz');
is($o->{status}, 204, 'OPTIONS /healthz is 204');
is(Markets::Test::header($o, 'Allow'), 'GET, HEAD, OPTIONS', 'OPTIONS: Allow');
is($o->{content}, '', 'OPTIONS: no body');
$t->is_error($t->request('OPTIONS', '/nope'), 404, 'not_found', 'OPTIONS on an unknown path');

# 400: the query string is decoded strictly before routing, on any path.
for my $q ('a=%zz', 'a=%', 'a=%4', 'a=%00', '%00=1', 'a=b%0', '=x') {
	$t->is_error($t->get("/healthz?$q"), 400, 'bad_request', "?$q on a known path");
	$t->is_error($t->get("/nope?$q"), 400, 'bad_request', "?$q on an unknown path");
}
is($t->get('/healthz?a=%41&b=+&c')->{status}, 200, 'good escapes, plus and bare keys pass');
# Path escapes: nginx refuses %00 itself (400), Apache too (as not found);
# the app refuses what the front lets through.
if ($apache) { front_error($t->get('/a%00b'), 404, 'not_found', 'NUL in the path (Apache)') }
else { $t->is_error($t->get('/a%00b'), 400, 'bad_request', 'NUL in the path (nginx)') }
front_error($t->get('/healthz%zz'), 400, 'bad_request', 'bad escape in the path');

# 415: a body in another media type, or with no type at all.
for my $type ('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/jsonx') {
	my $r = $t->request('POST', '/healthz', { headers => { 'Content-Type' => $type }, content => '{"a":1}' });
	$t->is_error($r, 415, 'unsupported_media_type', "body as $type");
}
my $untyped = $t->request('PUT', '/nope', { content => '{"a":1}' });
$t->is_error($untyped, 415, 'unsupported_media_type', 'body without Content-Type');
# A JSON body on a path that takes none is a 405, not a 415.
$t->is_error($t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json; charset=UTF-8' }, content => '{}' }),
	405, 'method_not_allowed', 'JSON body, wrong method');

# 413: the front refuses bodies over max_body (1m): nginx's
# client_max_body_size, Apache's rewrite on Content-Length.
my $big = $t->request('POST', '/healthz', { headers => $json, content => 'x' x (1024 * 1024 + 1) });
$t->is_error($big, 413, 'payload_too_large', 'body of 1 MiB + 1 (the front)');
my $fits = $t->request('POST', '/healthz', { headers => $json, content => '"' . ('x' x (1024 * 1024 - 2)) . '"' });
$t->is_error($fits, 405, 'method_not_allowed', 'body of exactly 1 MiB reaches the app');

# 414 and 431 from nginx (Apache: 414 and 400), in the envelope too.
front_error($t->get('/healthz?q=' . ('a' x 9000)), 414, 'uri_too_long', 'request line over 8k');
if ($apache) {
	front_error($t->get('/healthz', { headers => { 'X-Big' => 'a' x 9000 } }), 400, 'bad_request', 'one header over 8k (Apache)');
} else {
	$t->is_error($t->get('/healthz', { headers => { 'X-Big' => 'a' x 9000 } }), 431, 'headers_too_large', 'one header over 8k');
}

# 502 when the app is gone, still JSON (Apache's mod_proxy: 503). Under
# mod_fcgid Apache starts the app itself: there is no app to take away.
if ($t->mod_fcgid) {
	$t->finish;
	done_testing;
	exit 0;
}
# Wait for the master to be gone, not only its socket: until the workers have
# drained, a request the front sends on a kept-alive connection is still served.
my $master = $t->master_pid;
kill 'TERM', $master;
ok($t->wait_until(20, sub { !kill(0, $master) || Markets::Test::slurp("/proc/$master/stat") =~ /^\d+ \(.*\) Z/ }),
	'the app stopped');
my $gone = $t->get('/healthz');
my ($down_status, $down_code) = $apache ? (503, 'unavailable') : (502, 'bad_gateway');
$t->is_error($gone, $down_status, $down_code, 'app down');
ok(Markets::Test::header($gone, 'Retry-After'), "$down_status carries Retry-After");

$t->finish;
done_testing;
