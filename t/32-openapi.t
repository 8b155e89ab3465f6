#!/usr/bin/perl
# GET /api/openapi.json (API.md): the OpenAPI 3.1 document, built into the
# binary from docs/openapi.json — valid JSON, the same bytes as the file,
# and in step with the server: every path it names answers OPTIONS with an
# Allow header listing exactly the methods it documents, and every route
# of the server's table is documented.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(services => [qw(app nginx)]);
my $r = $t->get('/api/openapi.json');
is($r->{status}, 200, 'GET /api/openapi.json: 200');
like(Markets::Test::header($r, 'Content-Type') // '', qr{^application/json}, 'Content-Type: application/json');
ok(defined Markets::Test::header($r, 'X-RateLimit-Limit'), 'a limited route (API.md: all but /healthz, /readyz, /metrics)');
my $doc = eval { JSON::PP->new->utf8->decode($r->{content}) };
ok($doc, 'the body is JSON') or diag($@);
is($doc->{openapi}, '3.1.0', 'openapi 3.1.0');
my $file = Markets::Test::slurp("$Markets::Test::REPO/docs/openapi.json");
if (length $t->base_path) {
	# Under a base path servers[0].url says it, instead of the file's "/".
	(my $based = $file) =~ s{("servers": \[\s*\{\s*"url": ")/(")}{$1${\ $t->base_path}$2}
		or BAIL_OUT('docs/openapi.json has no servers[0].url "/"');
	is($r->{content}, $based, 'the same bytes as docs/openapi.json, servers[0].url the base path (' . $t->base_path . ')');
	is($doc->{servers}[0]{url}, $t->base_path, 'servers[0].url is the base path');
} else {
	is($r->{content}, $file, 'the same bytes as docs/openapi.json');
}

# The server's route table, as src/app.c declares it.
my ($routes) = Markets::Test::slurp("$Markets::Test::REPO/src/app.c") =~ /routes\[\] = \{(.*?)\n\s*\};/s;
my %server;
while ($routes =~ /\{ MK_METHOD_(\w+), "([^"]+)"/g) {
	my ($method, $path) = ($1, $2);
	$path =~ s/:(\w+)/{$1}/g;
	$server{$path}{$method} = 1;
}
ok(scalar(keys %server) >= 12, scalar(keys %server) . ' paths in the route table');
for my $path (sort keys %server) {
	ok($doc->{paths}{$path}, "$path is documented");
	for my $method (sort keys %{ $server{$path} }) {
		ok($doc->{paths}{$path}{lc $method}, "$method $path is documented");
	}
}
# Every documented path and method is served: OPTIONS says which.
for my $path (sort keys %{ $doc->{paths} }) {
	my @documented = sort map { uc } grep { /^(get|put|post|patch|delete)$/ } keys %{ $doc->{paths}{$path} };
	(my $concrete = $path) =~ s/\{\w+\}/1/g;
	my $o = $t->request('OPTIONS', $concrete);
	is($o->{status}, 204, "OPTIONS $concrete: 204");
	my %allow = map { $_ => 1 } split /,\s*/, (Markets::Test::header($o, 'Allow') // '');
	delete @allow{qw(HEAD OPTIONS)};
	is_deeply([sort keys %allow], \@documented, "$path: Allow lists the documented methods (@documented)");
	for my $method (@documented) {
		my $op = $doc->{paths}{$path}{lc $method};
		ok($op->{operationId} && $op->{responses} && %{ $op->{responses} }, "$method $path has an operationId and responses");
	}
}
# $refs all resolve.
my @refs = $r->{content} =~ /"\$ref":\s*"#\/([^"]+)"/g;
my @broken = grep {
	my $node = $doc;
	$node = ref $node eq 'HASH' ? $node->{$_} : undef for split m{/}, $_;
	!defined $node;
} @refs;
is(scalar @broken, 0, scalar(@refs) . ' $refs, none broken') or diag("@broken");

$t->finish;
done_testing;
