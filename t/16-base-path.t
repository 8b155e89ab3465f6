#!/usr/bin/perl
# The base path (docs/configuration.md, "Base path"): the app serves under
# whatever prefix it is mounted at. Derived per request from the FastCGI
# parameters, spoken straight to the app's socket with the ones nginx and
# Apache mod_fcgid (behind the shared-hosting .htaccess rewrite) really
# send; then configured (base_path, by SIGHUP) and reached through nginx.
# Through the Apache fronts: the same, where the app has a socket and a
# master (apache-proxy); under mod_fcgid the front-facing part only (under
# shared hosting at the base Apache derives, /~USER/markets), since there
# is no socket to speak to and no master to SIGHUP.
# Routes match after the base; Location (a replay's too), the list's
# RFC 8288 Link and the OpenAPI document's servers carry it; a request
# outside a configured base is the contract's 404.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Markets::FastCGI;
use Markets::Test;

my $t = Markets::Test->new(env => { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_JOB_RUNNERS => 0,
	MARKETS_CORS_ORIGINS => 'https://app.example.org' }, local_conf => "# base_path, by SIGHUP below\n");
my $json = JSON::PP->new->utf8->canonical;
my $SN = '/~demo/markets/markets.fcgi';

# A request on the app's socket with the given CGI params; the answer
# decoded: { status, headers (lower-case names), body, json }.
sub fcgi {
	my ($method, $uri, %a) = @_;
	my %params = (REQUEST_METHOD => $method, REQUEST_URI => $uri, %{ $a{params} || {} });
	if (defined $a{body}) {
		$params{CONTENT_TYPE} = 'application/json';
		$params{CONTENT_LENGTH} = length $a{body};
	}
	$params{HTTP_AUTHORIZATION} = 'Bearer ' . $t->token(sub => '501', email => 'u501@example.org', name => 'Base')
		if $a{auth};
	$params{HTTP_IDEMPOTENCY_KEY} = $a{key} if $a{key};
	my $r = Markets::FastCGI->simple($t->app_socket, params => \%params, body => $a{body} // '');
	$r->{json} = eval { $json->decode($r->{body}) };
	return $r;
}
# Apache's params behind `RewriteRule ^(.*)$ markets.fcgi/$1`: PATH_INFO the
# decoded route, SCRIPT_NAME the wrapper (src/http/base_path.h lists them).
sub apache { my ($path_info) = @_; return (SCRIPT_NAME => $SN, PATH_INFO => $path_info) }
sub nginx { my ($uri) = @_; (my $path = $uri) =~ s/\?.*//; return (SCRIPT_NAME => $path, PATH_INFO => '') }
my $market = $json->encode({ name => 'Based?', description => 'Mounted.', end_date => '2030-01-01T00:00:00Z' });

my $fcgid = $t->mod_fcgid;
my ($r, $id);
SKIP: {
skip 'no app socket to speak FastCGI to: under mod_fcgid Apache hands each process its own', 1 if $fcgid;
# --- Derived: nginx's params, the root --------------------------------------
$r = fcgi('POST', '/api/markets', params => { nginx('/api/markets') }, body => $market, auth => 1);
is($r->{status}, 201, 'nginx params: create 201') or diag($r->{body});
$id = $r->{json}{data}{id};
is($r->{headers}{location}, "/api/markets/$id", 'nginx params: Location at the root');
$r = fcgi('GET', '/api/openapi.json', params => { nginx('/api/openapi.json') });
is($r->{json}{servers}[0]{url}, '/', 'nginx params: servers[0].url is /');

# --- Derived: Apache mod_fcgid behind the rewrite ---------------------------
$r = fcgi('POST', '/~demo/markets/api/markets', params => { apache('/api/markets') }, body => $market, auth => 1);
is($r->{status}, 201, 'apache params: create 201') or diag($r->{body});
my $id2 = $r->{json}{data}{id};
is($r->{headers}{location}, "/~demo/markets/api/markets/$id2", 'apache params: Location under the base');
$r = fcgi('GET', "/~demo/markets/api/markets/$id2", params => { apache("/api/markets/$id2") });
is($r->{status}, 200, 'apache params: the route after the base');
is($r->{json}{data}{name}, 'Based?', 'apache params: the market');
$r = fcgi('GET', "/%7Edemo/markets/api/mar%6Bets/$id2", params => { apache("/api/markets/$id2") });
is($r->{status}, 200, 'apache params, escapes in base and route: 200');
$r = fcgi('GET', '/%7Edemo/markets/api/openapi.json', params => { apache('/api/openapi.json') });
is($r->{status}, 200, 'apache params: openapi 200');
is($r->{json}{servers}[0]{url}, '/%7Edemo/markets', "servers[0].url is the base as the client spelt it");
is($r->{json}{openapi}, '3.1.0', 'the rest of the document is intact');
$r = fcgi('GET', '/~demo/markets/api//markets', params => { apache('/api/markets') });
is($r->{status}, 404, "Apache merged '//' in PATH_INFO: the base is SCRIPT_NAME's directory, the route the raw rest (404, not 500)");
$r = fcgi('GET', '/elsewhere/api/markets', params => { apache('/nothing') });
is($r->{status}, 404, 'nothing matches: the root, and no such route');
is($r->{json}{code}, 'not_found', 'the contract envelope');
$r = fcgi('GET', '/~demo/markets/markets.fcgi/healthz', params => { apache('/healthz') });
is($r->{status}, 200, 'the wrapper named in the URL: part of the base');

# Idempotent replay: stored without a base, answered with the replay's.
my $key = 'base-path-replay-1';
$r = fcgi('POST', '/~demo/markets/api/markets', params => { apache('/api/markets') }, body => $market, auth => 1, key => $key);
is($r->{status}, 201, 'idempotent create under /~demo/markets');
my $id3 = $r->{json}{data}{id};
is($r->{headers}{location}, "/~demo/markets/api/markets/$id3", 'its Location under the base');
is(($t->sql("SELECT location FROM idempotency_keys WHERE idem_key = '$key'"))[0][0], "/api/markets/$id3",
	'stored without the base');
$r = fcgi('POST', '/api/markets', params => { nginx('/api/markets') }, body => $market, auth => 1, key => $key);
is($r->{headers}{'idempotent-replayed'}, 'true', 'replayed at the root');
is($r->{headers}{location}, "/api/markets/$id3", "the replay's Location carries the replay's base (none)");
$r = fcgi('POST', '/shop/api/markets', params => { SCRIPT_NAME => '/shop/m.fcgi', PATH_INFO => '/api/markets' },
	body => $market, auth => 1, key => $key);
is($r->{headers}{location}, "/shop/api/markets/$id3", "replayed under another mount point: that one's base");

# --- Link: rel="next" ----------------------------------------------------------
$r = fcgi('GET', '/~demo/markets/api/markets?limit=1&status=active&offset=0',
	params => { apache('/api/markets') });
is($r->{status}, 200, 'a list page under the base');
my $cursor = $r->{json}{meta}{next_cursor};
ok($cursor, 'it has a next cursor');
is($r->{headers}{link}, "</~demo/markets/api/markets?limit=1&status=active&cursor=$cursor>; rel=\"next\"",
	'Link: the same query under the base, offset dropped, cursor added');
}

# Through the front (nginx and apache: the root; shared hosting: its
# base): following the Link gives the next page.
if ($fcgid) {
	# Three markets, as the socket's part above makes: a list of two has a next page.
	my $c;
	for (1 .. 3) {
		$c = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(sub => '501') }, 'Content-Type' => 'application/json' },
			content => $market });
		is($c->{status}, 201, 'create through the front');
	}
	$id = $c->{json}{data}{id};
	is(Markets::Test::header($c, 'Location'), $t->path("/api/markets/$id"), 'its Location: ' . $t->path("/api/markets/$id"));
	is($t->get('/api/openapi.json')->{json}{servers}[0]{url}, $t->base_path || '/', "servers[0].url is the front's base");
}
my $page = $t->get('/api/markets?limit=2&sort=name&cur%73or=&x=%41');
is($page->{status}, 400, 'an empty cursor is a 400 (and so not in the next test)');
$page = $t->get('/api/markets?limit=2&sort=-name');
my ($next) = (Markets::Test::header($page, 'Link') // '') =~ /^<([^>]+)>; rel="next"$/;
is($next, $t->path("/api/markets?limit=2&sort=-name&cursor=$page->{json}{meta}{next_cursor}"), 'Link through the front');
# (get() puts the base before a path: the Link's path is given without it.)
my $second = $t->get(substr($next // '', length $t->base_path));
is($second->{status}, 200, 'following Link: 200');
my $by_meta = $t->get("/api/markets?limit=2&sort=-name&cursor=$page->{json}{meta}{next_cursor}");
is_deeply($second->{json}{data}, $by_meta->{json}{data}, 'the page Link names is the one meta.next_cursor names');
ok(!defined Markets::Test::header($t->get('/api/markets?limit=100'), 'Link'), 'no next page, no Link');
$page = $t->get("/api/markets/$id/positions?limit=1");
ok(!defined Markets::Test::header($page, 'Link'), 'positions: no next page, no Link');
my $cors = $t->get('/api/markets?limit=1', { headers => { Origin => 'https://app.example.org' } });
like(Markets::Test::header($cors, 'Access-Control-Expose-Headers') // '', qr/\bLink\b/, 'CORS exposes Link');

# --- Configured: base_path = /shop, through nginx --------------------------------
SKIP: {
skip 'base_path is configured by SIGHUP to the master: under mod_fcgid there is none (and the vhost or '
	. 'the shared host sets the base)', 1 if $fcgid;
my @old = $t->worker_pids;
$t->write_local_conf("base_path = /shop\n");
kill 'HUP', $t->master_pid;
ok($t->wait_until(20, sub { my %o = map { $_ => 1 } @old; my @w = $t->worker_pids; @w >= 2 && !grep { $o{$_} } @w }),
	'SIGHUP: workers with base_path = /shop');
is($t->get('/shop/healthz')->{status}, 200, '/shop/healthz: 200');
is($t->get("/shop/api/markets/$id")->{status}, 200, '/shop/api/markets/ID: 200');
is($t->get("/%73hop/api/markets/$id")->{status}, 200, 'the base percent-escaped: still under it');
$t->is_error($t->get('/api/markets'), 404, 'not_found', 'outside the base: 404');
$t->is_error($t->get('/shopping/api/markets'), 404, 'not_found', 'a longer segment is outside too');
$t->is_error($t->get('/sh'), 404, 'not_found', 'a shorter path too');
$r = $t->request('POST', '/shop/api/markets', { headers => { %{ $t->bearer(sub => '502') }, 'Content-Type' => 'application/json' },
	content => $market });
is($r->{status}, 201, 'create under /shop');
is(Markets::Test::header($r, 'Location'), "/shop/api/markets/$r->{json}{data}{id}", 'Location under /shop');
$r = $t->request('POST', "/shop/api/markets/$id/index", { headers => $t->bearer(sub => '501') });
is($r->{status}, 202, 're-index under /shop');
like(Markets::Test::header($r, 'Location') // '', qr{^/shop/api/jobs/\d+$}, "the job's Location under /shop");
$r = $t->get('/shop/api/openapi.json');
is($r->{json}{servers}[0]{url}, '/shop', 'servers[0].url is /shop');
$page = $t->get('/shop/api/markets?limit=1');
is(Markets::Test::header($page, 'Link'), "</shop/api/markets?limit=1&cursor=$page->{json}{meta}{next_cursor}>; rel=\"next\"",
	'Link under /shop');
$r = fcgi('GET', '/shop/api/markets?limit=1', params => { apache('/nothing/alike') });
is($r->{status}, 200, 'configured: PATH_INFO is not asked');

# The access log keeps the raw path.
my $line = $t->access_line(Markets::Test::header($page, 'X-Request-Id'));
is($line->{path}, '/shop/api/markets?limit=1', 'the log line: the path as sent');
is($line->{route}, '/api/markets', 'and the route matched after the base');

# A bad base_path is refused by the reload; the workers keep serving.
@old = $t->worker_pids;
$t->write_local_conf("base_path = /shop/\n");
kill 'HUP', $t->master_pid;
ok($t->wait_until(10, sub { grep { ($_->{msg} // '') =~ /base_path/ } $t->log_lines }), 'a trailing slash: the reload says why')
	or diag(join "\n", $t->log_text_lines);
is($t->get('/shop/healthz')->{status}, 200, 'and the old workers still serve /shop');
}

$t->finish;
done_testing;
