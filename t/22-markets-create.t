#!/usr/bin/perl
# POST /api/markets against MariaDB: 201 with Location and the stored
# market; the caller's user row created or refreshed from the token in the
# same transaction; an initial position written with the market or neither;
# every bad body a 400 listing every failing field (unknown and read-only
# fields included), broken JSON an invalid_json; nothing written on failure.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
my $json = JSON::PP->new->utf8->canonical;
sub post {
	my ($body, %claims) = @_;
	my $headers = { %{ $t->bearer(sub => '7001', role => 'user', email => 'u7001@example.org', name => 'Ann', %claims) },
		'Content-Type' => 'application/json' };
	return $t->request('POST', '/api/markets', { headers => $headers, content => ref $body ? $json->encode($body) : $body });
}
sub count_markets { ($t->sql('SELECT COUNT(*) FROM markets'))[0][0] }

# Created: 201, Location, the stored row, the creator from the token.
my $r = post({ name => "  Will it snow in Lisbon?\t", description => 'Per IPMA.', end_date => '2027-02-01T00:00:00Z' });
is($r->{status}, 201, 'create: 201');
my $m = $r->{json}{data};
is(Markets::Test::header($r, 'Location'), $t->path("/api/markets/$m->{id}"), 'Location of the new market');
is($m->{name}, 'Will it snow in Lisbon?', 'name trimmed');
is($m->{status}, 'active', 'status defaults to active');
is($m->{volume}, '0.00', 'volume starts at 0.00');
is($m->{creator_id}, 7001, 'creator_id is the token sub');
is($m->{end_date}, '2027-02-01T00:00:00Z', 'end_date');
like($m->{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at');
is_deeply($t->get("/api/markets/$m->{id}")->{json}{data}, $m, 'GET returns what POST answered');
is_deeply([$t->sql("SELECT id, name, email FROM users WHERE id = 7001")], [[7001, 'Ann', 'u7001@example.org']],
	'the caller was created from the token');

# The user row is refreshed on the next write; a token without a name keeps it.
post({ name => 'second' }, name => 'Ann B', email => 'ann.b@example.org');
is_deeply([$t->sql("SELECT name, email FROM users WHERE id = 7001")], [['Ann B', 'ann.b@example.org']], 'refreshed from a new token');
post({ name => 'third' }, name => undef, email => undef);
is_deeply([$t->sql("SELECT name, email FROM users WHERE id = 7001")], [['Ann B', 'ann.b@example.org']],
	'a token without name or email keeps them');

# An initial position: written with the market, volume = its amount.
$r = post({ name => 'With a position', initial_position => { side => 'no', amount => '12.5' } });
is($r->{status}, 201, 'with initial_position: 201');
is($r->{json}{data}{volume}, '12.50', 'volume is the amount, exactly');
is_deeply([$t->sql("SELECT user_id, side, amount FROM positions WHERE market_id = $r->{json}{data}{id}")], [[7001, 'no', '12.50']],
	'the position row');
$r = post({ name => 'Big', initial_position => { side => 'yes', amount => '1000000000000' } });
is($r->{json}{data}{volume}, '1000000000000.00', 'the largest amount, exact (no float)');

# Stored and returned exactly: SQL, script, Unicode, the 200-character edge.
for my $name ("Robert'); DROP TABLE markets;--", '<script>alert(1)</script>', "caf\x{e9} \x{1f600} \x{4e2d}\x{6587}", 'x' x 200, "\x{e9}" x 200) {
	$r = post({ name => $name, description => $name });
	is($r->{status}, 201, 'stored: ' . substr($name, 0, 20));
	is($r->{json}{data}{name}, $name, 'returned exactly');
}
is(($t->sql("SELECT COUNT(*) FROM markets WHERE name LIKE 'Robert%'"))[0][0], 1, 'the SQL text is a name, not SQL');

# Validation: every failing field in one answer.
my $before = count_markets();
$r = post({ name => '   ', description => 'd' x 5001, status => 'open', end_date => '2027-02-30T00:00:00Z',
	id => 5, volume => '9.00', creator_id => 1, created_at => 'x', updated_at => 'y', owner => 'me',
	initial_position => { side => 'maybe', amount => '-0', extra => 1 } });
$t->is_error($r, 400, 'validation_failed', 'a body wrong everywhere');
my %fields = map { $_->{field} => $_->{message} } @{ $r->{json}{details} || [] };
is_deeply([sort keys %fields], [sort qw(name description status end_date id volume creator_id created_at updated_at owner
	initial_position.side initial_position.amount initial_position.extra)], 'details list every failing field');
like($fields{volume}, qr/read-only/, 'volume is read-only');
like($fields{owner}, qr/not a field/, 'owner is unknown');

my @bad = (
	[{}, 'name', 'name missing'],
	[{ name => 'x' x 201 }, 'name', 'name of 201 characters'],
	[{ name => '  ' . ('x' x 201) . '  ' }, 'name', 'name of 201 characters after trimming'],
	[{ name => 5 }, 'name', 'name a number'],
	[{ name => 'n', description => 5 }, 'description', 'description a number'],
	[{ name => 'n', status => 'ACTIVE' }, 'status', 'status in capitals'],
	[{ name => 'n', end_date => '2027-02-01' }, 'end_date', 'a date without time'],
	[{ name => 'n', end_date => '2027-02-01T00:00:00+01:00' }, 'end_date', 'not UTC'],
	[{ name => 'n', end_date => '2027-13-01T00:00:00Z' }, 'end_date', 'month 13'],
	[{ name => 'n', end_date => 1800000000 }, 'end_date', 'a number'],
	[{ name => 'n', initial_position => 5 }, 'initial_position', 'initial_position not an object'],
	map({ [{ name => 'n', initial_position => { side => 'yes', amount => $_ } }, 'initial_position.amount', "amount '$_'"] }
		'0', '0.00', '-0', '-1', '1e999', '1e2', '0.001', '01', '1000000000000.01', '1,5', ' 1', ''),
	[{ name => 'n', initial_position => { side => 'yes', amount => 12 } }, 'initial_position.amount', 'amount a number'],
);
for my $case (@bad) {
	my ($body, $field, $name) = @$case;
	$r = post($body);
	$t->is_error($r, 400, 'validation_failed', $name);
	ok((grep { $_->{field} eq $field } @{ $r->{json}{details} || [] }), "$name: details name $field");
}
is(post({ name => 'n', end_date => undef })->{status}, 201, 'end_date null is fine');
is(post({ name => 'n', end_date => '2028-02-29T23:59:59.5+00:00' })->{status}, 201, 'a leap day, a fraction, +00:00');
$before = count_markets();

# Not JSON: invalid_json, and nothing written.
for my $case (['{"name":', 'cut short'], ['{"name":"a","name":"b"}', 'a duplicate key'], ["{\"name\":\"a\xff\"}", 'invalid UTF-8'],
	['{"name":"a\u0000b"}', 'a NUL'], [('[' x 1000) . (']' x 1000), 'nested 1000 deep'], ['{"name":"a"} x', 'trailing text'],
	["{'name':'a'}", 'single quotes'], ['', 'an empty body']) {
	my ($body, $name) = @$case;
	$r = post($body);
	if ($body eq '') {
		$t->is_error($r, 400, 'invalid_json', $name);
	} else {
		$t->is_error($r, 400, 'invalid_json', $name);
	}
}
$r = post(('{"a":' x 33) . '1' . ('}' x 33));
$t->is_error($r, 400, 'invalid_json', 'nested 33 deep');
$r = post(('{"a":' x 31) . '1' . ('}' x 31));
$t->is_error($r, 400, 'validation_failed', 'nested 31 deep is JSON (and an unknown field)');
is(count_markets(), $before, 'no market written by any bad body');

# Who may create: a token is needed; the body never chooses the creator.
$t->is_error($t->request('POST', '/api/markets', { headers => { 'Content-Type' => 'application/json' }, content => '{"name":"x"}' }),
	401, 'unauthorized', 'no token');
$t->is_error($t->request('POST', '/api/markets', { headers => { %{ $t->bearer(sub => '7001') }, 'Content-Type' => 'text/plain' },
	content => '{"name":"x"}' }), 415, 'unsupported_media_type', 'text/plain');

# One transaction: when the user refresh fails (the token's email belongs to
# another user), no market is written either.
$before = count_markets();
$r = post({ name => 'should not exist' }, sub => '7002', email => 'user42@example.org');
$t->is_error($r, 409, 'conflict', 'the email of another user');
is(count_markets(), $before, 'no market written');
is(($t->sql('SELECT COUNT(*) FROM users WHERE id = 7002'))[0][0], 0, 'no user written');

$t->finish;
done_testing;
