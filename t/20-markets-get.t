#!/usr/bin/perl
# GET /api/markets/:id against the seeded MariaDB (sql/seed/demo.sql):
# the market in the contract's shape (decimal volume with 2 places, RFC 3339
# UTC times, integer ids), sparse `fields`, `include=creator`, and every bad
# id or parameter answered with the contract's error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '100000/60' });

my $r = $t->get('/api/markets/42');
is($r->{status}, 200, 'GET /api/markets/42');
my $m = $r->{json}{data};
my @row = @{ ($t->sql("SELECT name, description, status, volume, creator_id,
	DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ'), end_date IS NULL FROM markets WHERE id = 42"))[0] };
is_deeply([sort keys %$m], [sort qw(id name description status volume creator_id end_date created_at updated_at)],
	'every field of a market');
is($m->{id}, 42, 'id');
ok(!ref $m->{id} && $r->{content} =~ /"id":42[,}]/, 'id is a JSON integer');
is($m->{name}, $row[0], 'name as stored');
is($m->{description}, $row[1], 'description as stored');
is($m->{status}, $row[2], 'status as stored');
is($m->{volume}, $row[3], 'volume as stored');
like($m->{volume}, qr/^\d+\.\d\d$/, 'volume is a decimal string with 2 places');
like($r->{content}, qr/"volume":"\d+\.\d\d"/, 'volume is a JSON string');
is($m->{creator_id}, $row[4], 'creator_id');
is($m->{created_at}, $row[5], 'created_at');
like($m->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at is RFC 3339 UTC');
like($m->{updated_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'updated_at is RFC 3339 UTC');
if ($row[6]) { is($m->{end_date}, undef, 'end_date null') } else { like($m->{end_date}, qr/Z$/, 'end_date RFC 3339') }
my $no_end = $t->get('/api/markets/40')->{json}{data};
ok(exists $no_end->{end_date} && !defined $no_end->{end_date}, 'a market without an end date has end_date null');
like($t->get('/api/markets/10000')->{json}{data}{name}, qr/event 10000/, 'the last seeded market');

# Sparse fields: only those, plus id; the creator embedded on request.
my $f = $t->get('/api/markets/42?fields=name,volume')->{json}{data};
is_deeply([sort keys %$f], [qw(id name volume)], 'fields=name,volume (id always)');
$f = $t->get('/api/markets/42?fields=status,status')->{json}{data};
is_deeply([sort keys %$f], [qw(id status)], 'a field named twice');
my $c = $t->get('/api/markets/42?include=creator')->{json}{data};
my @user = @{ ($t->sql("SELECT u.id, u.name, u.email FROM users u JOIN markets m ON m.creator_id = u.id WHERE m.id = 42"))[0] };
is_deeply($c->{creator}, { id => $user[0], name => $user[1] }, 'include=creator embeds the user: id and name for anyone');
# API.md: the email is for that user and for admins only.
my %as = (
	'the creator' => [$t->bearer(sub => "$user[0]", role => 'user'), 1],
	'an admin' => [$t->bearer(sub => '999001', role => 'admin'), 1],
	'another user' => [$t->bearer(sub => '999002', role => 'user'), 0],
	'a moderator' => [$t->bearer(sub => '999003', role => 'moderator'), 0],
);
my %etags;
for my $who (sort keys %as) {
	my ($headers, $sees) = @{ $as{$who} };
	my $r = $t->get('/api/markets/42?include=creator', { headers => $headers });
	is_deeply($r->{json}{data}{creator}, { id => $user[0], name => $user[1], $sees ? (email => $user[2]) : () },
		"include=creator read by $who: " . ($sees ? 'with' : 'without') . ' the email');
	$etags{$sees}{ Markets::Test::header($r, 'ETag') } = 1;
}
is(scalar(keys %{ $etags{1} }) + scalar(keys %{ $etags{0} }), 2, 'with and without the email are two representations (ETags)');
my $cf = $t->get('/api/markets/42?fields=name&include=creator')->{json}{data};
is_deeply([sort keys %$cf], [qw(creator id name)], 'fields and include together: creator_id not shown unless asked');
is($cf->{creator}{id}, $user[0], 'but the creator is the right one');

# Unknown and impossible ids: 404.
for my $id (qw(0 10001 99999999 9223372036854775807 9223372036854775808 18446744073709551616 007 -1 1.0 abc 1e2)) {
	$t->is_error($t->get("/api/markets/$id"), 404, 'not_found', "id $id");
}
# Bad parameters: 400 naming the parameter.
for my $case (['fields=nope', 'fields'], ['fields=', 'fields'], ['fields=name,', 'fields'], ['fields=name&fields=status', 'fields'],
	['include=owner', 'include'], ['include=creator&include=creator', 'include']) {
	my ($q, $param) = @$case;
	my $e = $t->get("/api/markets/1?$q");
	$t->is_error($e, 400, 'bad_request', "?$q");
	like($e->{json}{error}, qr/'\Q$param\E'/, "?$q: the message names '$param'");
}
# SQL in the id or a parameter is just a bad id or field.
$t->is_error($t->get('/api/markets/1%20OR%201=1'), 404, 'not_found', 'SQL in the id');
$t->is_error($t->get('/api/markets/1?fields=name%3BDROP%20TABLE%20markets'), 400, 'bad_request', 'SQL in fields');
is(($t->sql('SELECT COUNT(*) FROM markets'))[0][0], 10000, 'the markets are all still there');

# Two queries at most, whatever is asked: counted by the app for requests
# only (MariaDB's own Com_stmt_execute also sees the workers' index
# refreshes and the job runner's polls).
sub request_statements {
	my ($n) = $t->get('/metrics')->{content} =~ /^markets_db_queries_total (\d+)$/m;
	return $n // die 'no markets_db_queries_total in /metrics';
}
my $before = request_statements();
$t->get('/api/markets/7?include=creator') for 1 .. 10;
my $after = request_statements();
is($after - $before, 20, 'include=creator: two statements per request (market, creator)');

$t->finish;
done_testing;
