#!/usr/bin/perl
# PUT, PATCH and DELETE /api/markets/:id against MariaDB: who may change
# what (the creator; moderators and admins any; delete needs the delete
# permission), PUT replacing and PATCH changing only what it names, strong
# ETags with If-Match (412 on a stale one, checked on the locked row) and
# If-None-Match (304), validation with details, DELETE taking the positions.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
my $json = JSON::PP->new->utf8->canonical;
sub h { Markets::Test::header(@_) }
sub write_req {
	my ($method, $id, $body, $claims, $extra) = @_;
	return $t->request($method, "/api/markets/$id", { headers => { %{ $t->bearer(%$claims) },
		'Content-Type' => 'application/json', %{ $extra || {} } }, content => ref $body ? $json->encode($body) : $body });
}
my %owner = (sub => '4001', role => 'user');
my %stranger = (sub => '4002', role => 'user');
my %moderator = (sub => '4003', role => 'moderator');
my %admin = (sub => '4004', role => 'admin');

# A market of the owner's, with a position.
my $c = $t->request('POST', '/api/markets', { headers => { %{ $t->bearer(%owner) }, 'Content-Type' => 'application/json' },
	content => $json->encode({ name => 'Original', description => 'desc', status => 'active', end_date => '2027-05-01T00:00:00Z',
		initial_position => { side => 'yes', amount => '3.00' } }) });
is($c->{status}, 201, 'created');
my $id = $c->{json}{data}{id};
my $g = $t->get("/api/markets/$id");
is(h($g, 'ETag'), '"v1"', 'a new market has ETag "v1"');

# PATCH by the creator: only the named field changes.
my $r = write_req('PATCH', $id, { name => 'Renamed' }, \%owner);
is($r->{status}, 200, 'PATCH by the creator');
is($r->{json}{data}{name}, 'Renamed', 'name changed');
is($r->{json}{data}{description}, 'desc', 'description untouched');
is($r->{json}{data}{end_date}, '2027-05-01T00:00:00Z', 'end_date untouched');
is($r->{json}{data}{volume}, '3.00', 'volume untouched');
is(h($r, 'ETag'), '"v2"', 'the new ETag');
is_deeply($t->get("/api/markets/$id")->{json}{data}, $r->{json}{data}, 'GET sees the change');
$r = write_req('PATCH', $id, { end_date => undef }, \%owner, { 'Content-Type' => 'application/merge-patch+json' });
is($r->{status}, 200, 'PATCH as application/merge-patch+json');
is($r->{json}{data}{end_date}, undef, 'end_date cleared with null');

# Who may.
$t->is_error(write_req('PATCH', $id, { name => 'Hijack' }, \%stranger), 403, 'forbidden', 'PATCH by another user');
$t->is_error(write_req('PUT', $id, { name => 'Hijack' }, \%stranger), 403, 'forbidden', 'PUT by another user');
is(($t->sql("SELECT name FROM markets WHERE id = $id"))[0][0], 'Renamed', 'nothing changed');
is(write_req('PATCH', $id, { status => 'closed' }, \%moderator)->{status}, 200, 'a moderator may');
is(write_req('PATCH', $id, { status => 'active' }, \%admin)->{status}, 200, 'an admin may');
$t->is_error($t->request('PATCH', "/api/markets/$id", { headers => { 'Content-Type' => 'application/json' }, content => '{"name":"x"}' }),
	401, 'unauthorized', 'PATCH without a token');
$t->is_error(write_req('PATCH', 99999, { name => 'x' }, \%admin), 404, 'not_found', 'PATCH an unknown market');

# PUT replaces: what it omits goes back to the defaults.
$r = write_req('PUT', $id, { name => 'Replaced' }, \%owner);
is($r->{status}, 200, 'PUT');
is_deeply([@{ $r->{json}{data} }{qw(name description status end_date volume creator_id)}],
	['Replaced', '', 'active', undef, '3.00', 4001], 'PUT: description, status, end_date back to defaults; volume and creator kept');
$t->is_error(write_req('PUT', $id, { description => 'no name' }, \%owner), 400, 'validation_failed', 'PUT without a name');

# Validation with details.
for my $case ([{ volume => '9.00' }, 'volume'], [{ creator_id => 1 }, 'creator_id'], [{ id => 1 }, 'id'], [{ owner => 1 }, 'owner'],
	[{ initial_position => { side => 'yes', amount => '1' } }, 'initial_position'], [{}, 'body'], [{ name => '' }, 'name'],
	[{ status => 'open' }, 'status'], [{ end_date => 'soon' }, 'end_date']) {
	my ($body, $field) = @$case;
	my $e = write_req('PATCH', $id, $body, \%owner);
	$t->is_error($e, 400, 'validation_failed', 'PATCH ' . $json->encode($body));
	ok((grep { $_->{field} eq $field } @{ $e->{json}{details} || [] }), "details name $field");
}
$t->is_error(write_req('PATCH', $id, '{"name":"a","name":"b"}', \%owner), 400, 'invalid_json', 'duplicate keys');

# ETags: If-Match (412 when stale), If-None-Match (304 when current).
my $etag = h($t->get("/api/markets/$id"), 'ETag');
$r = write_req('PATCH', $id, { description => 'stale' }, \%owner, { 'If-Match' => '"v1"' });
$t->is_error($r, 412, 'precondition_failed', 'If-Match with a stale ETag');
isnt(($t->sql("SELECT description FROM markets WHERE id = $id"))[0][0], 'stale', 'and nothing was written');
$t->is_error(write_req('PATCH', $id, { description => 'weak' }, \%owner, { 'If-Match' => "W/$etag" }), 412, 'precondition_failed',
	'a weak ETag never matches If-Match');
$r = write_req('PATCH', $id, { description => 'fresh' }, \%owner, { 'If-Match' => qq{"v0", $etag} });
is($r->{status}, 200, 'If-Match with the current ETag in a list');
my $new = h($r, 'ETag');
isnt($new, $etag, 'the ETag moved');
is(write_req('PATCH', $id, { description => 'any' }, \%owner, { 'If-Match' => '*' })->{status}, 200, 'If-Match: *');
$t->is_error(write_req('PATCH', 99999, { name => 'x' }, \%admin, { 'If-Match' => '*' }), 404, 'not_found', 'If-Match * on nothing');
$etag = h($t->get("/api/markets/$id"), 'ETag');
my $nm = $t->get("/api/markets/$id", { headers => { 'If-None-Match' => $etag } });
is($nm->{status}, 304, 'If-None-Match with the current ETag: 304');
is($nm->{content}, '', '304 has no body');
is(h($nm, 'ETag'), $etag, '304 repeats the ETag');
is($t->get("/api/markets/$id", { headers => { 'If-None-Match' => '"v1"' } })->{status}, 200, 'a stale If-None-Match: 200');
my $sparse = $t->get("/api/markets/$id?fields=name");
isnt(h($sparse, 'ETag'), $etag, 'a partial representation has its own ETag');
is($t->get("/api/markets/$id?fields=name", { headers => { 'If-None-Match' => h($sparse, 'ETag') } })->{status}, 304,
	'and it revalidates itself');

# The caller's user row is refreshed on these writes too.
write_req('PATCH', $id, { description => 'by a named moderator' }, { %moderator, name => 'Mod', email => 'mod@example.org' });
is_deeply([$t->sql('SELECT name, email FROM users WHERE id = 4003')], [['Mod', 'mod@example.org']], 'PATCH refreshed the caller');

# DELETE: the delete permission (moderator, admin), positions with it.
$t->is_error(write_req('DELETE', $id, '', \%owner), 403, 'forbidden', 'a user (even the creator) may not delete');
is(($t->sql("SELECT COUNT(*) FROM positions WHERE market_id = $id"))[0][0], 1, 'the market still has its position');
$r = write_req('DELETE', $id, '', \%moderator, { 'Content-Type' => undef });
is($r->{status}, 204, 'a moderator deletes: 204');
is($r->{content}, '', 'no body');
$t->is_error($t->get("/api/markets/$id"), 404, 'not_found', 'gone');
is(($t->sql("SELECT COUNT(*) FROM positions WHERE market_id = $id"))[0][0], 0, 'its positions went with it');
$t->is_error(write_req('DELETE', $id, '', \%admin), 404, 'not_found', 'DELETE again');

$t->finish;
done_testing;
