#!/usr/bin/perl
# X-Request-Id through the front: a sane incoming id (1-64 chars of
# [A-Za-z0-9._-]) is kept; anything else is replaced by a fresh id, never
# a cleaned-up copy. The front's access log (nginx's or Apache's) and the
# app's log carry the same id, and error bodies repeat it. The app's
# access line also carries the client's address (X-Forwarded-For's only
# from a trusted proxy) and the size of the body sent.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(services => [qw(app nginx)]);
sub rid { Markets::Test::header($_[0], 'X-Request-Id') }

my @kept = ('a', 'abc-123', 'A.b_c-9', 'x' x 64, '0123456789abcdef0123456789abcdef');
for my $id (@kept) {
	my $r = $t->get('/healthz', { headers => { 'X-Request-Id' => $id } });
	is(rid($r), $id, "kept: '$id'");
	my $e = $t->get('/nope', { headers => { 'X-Request-Id' => $id } });
	is($e->{json}{request_id}, $id, "kept in an error body: '$id'");
	my $line = $t->access_line($id);
	ok($line, "the app logged '$id'");
}

my @replaced = ('x' x 65, 'has space', 'semi;colon', 'slash/y', 'dollar$', 'quote"', '<script>', 'a,b');
for my $id (@replaced) {
	my $r = $t->get('/nope', { headers => { 'X-Request-Id' => $id } });
	my $got = rid($r);
	like($got, qr/^[0-9a-f]{32}$/, "replaced by a fresh id: '$id'");
	is($r->{json}{request_id}, $got, 'the error body carries the new id');
	(my $cleaned = $id) =~ s/[^A-Za-z0-9._-]//g;
	isnt($got, $cleaned, 'not a cleaned-up copy');
}

# Two requests without an id get two different ids.
my %seen;
$seen{ rid($t->get('/healthz')) }++ for 1 .. 50;
is(scalar keys %seen, 50, '50 requests, 50 distinct ids');

# The front and the app agree on the id, for app answers and for the
# front's own errors. (Both fronts log the response's X-Request-Id as rid=.)
my $front = $t->front eq 'nginx' ? 'nginx' : 'Apache';
my $access_log = $t->root . ($t->front eq 'nginx' ? '/log/nginx-access.log' : '/log/apache-access.log');
my $r = $t->get('/healthz');
my $id = rid($r);
ok($t->wait_until(5, sub { Markets::Test::slurp($access_log) =~ /rid=\Q$id\E/ }),
	"${front}'s access log has the app's id");
# (Non-ASCII ids are covered in t/05-fastcgi.t: HTTP::Tiny refuses to send them.)
my $big = $t->request('POST', '/healthz', { headers => { 'X-Request-Id' => 'too-big-1', 'Content-Type' => 'application/json' },
	content => 'x' x (1024 * 1024 + 1) });
is($big->{status}, 413, "${front}'s own 413");
is($big->{json}{request_id}, rid($big), "${front}'s error: the body repeats the header's id");
{
	# API.md: every response keeps a sane incoming id. Apache's ErrorDocument
	# and Header expressions give its own errors mod_unique_id's id instead
	# (conf/apache-markets.conf): a known gap of the Apache fronts.
	local $TODO = $t->front eq 'nginx' ? undef : "Apache's own errors do not keep the incoming X-Request-Id yet";
	is(rid($big), 'too-big-1', "${front}'s error keeps a sane incoming id");
}
my $big_id = rid($big) // '';
# The front writes its access line after the answer went out: wait for it.
ok($t->wait_until(5, sub { Markets::Test::slurp($access_log) =~ /" 413 .*rid=\Q$big_id\E/ }),
	"$front logged its 413 with that id");

# The access line: the client's address and the body's size as sent.
my $got = $t->get('/healthz', { headers => { 'X-Request-Id' => 'fields-get', 'X-Forwarded-For' => '203.0.113.9' } });
my $line = $t->access_line('fields-get');
is($line->{client}, '127.0.0.1', 'the access line names the client (REMOTE_ADDR; X-Forwarded-For from no trusted proxy is not believed)');
is($line->{bytes}, length $got->{content}, "and the body's size ($line->{bytes} bytes)");
my $missing = $t->get('/no/such', { headers => { 'X-Request-Id' => 'fields-404' } });
is($t->access_line('fields-404')->{bytes}, length $missing->{content}, 'an error body is counted too');
my $head = $t->request('HEAD', '/healthz', { headers => { 'X-Request-Id' => 'fields-head' } });
is($head->{status}, 200, 'HEAD /healthz: 200');
is($t->access_line('fields-head')->{bytes}, 0, 'a HEAD sends no body: 0 bytes');
$t->finish;

my $proxied = Markets::Test->new(services => [qw(app nginx)], env => { MARKETS_TRUSTED_PROXIES => '127.0.0.1' });
$proxied->get('/healthz', { headers => { 'X-Request-Id' => 'fields-xff', 'X-Forwarded-For' => '198.51.100.7, 203.0.113.9' } });
is($proxied->access_line('fields-xff')->{client}, '203.0.113.9',
	'behind a trusted proxy: the rightmost X-Forwarded-For entry, as the rate limiter counts it');
$proxied->finish;
done_testing;
