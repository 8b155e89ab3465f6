#!/usr/bin/perl
# Semantic search (GET /api/markets/search) and the index jobs behind it,
# end to end on a seeded stack (markets-admin reindex --missing embedded the
# 10,000 seeded markets at start):
# - paraphrased questions find the curated market (ids 9001-9040) FIRST;
# - the contract: scores are numbers in [-1, 1], best first, ties by
#   ascending id; limit 1-50 (default 10), anything else a 400; q required,
#   not blank, at most 500 characters (not bytes), valid UTF-8; results are
#   whole market objects plus score; anonymous works, a bad token is a 401,
#   HEAD works;
# - a new market is searchable within seconds: the POST only enqueues (the
#   job row commits with the market) and the runner's job ends done; an
#   edit re-indexes (the new topic finds it, the old one no longer does);
#   a DELETE takes it out of the results (the tombstone);
# - POST /api/markets/:id/index (write permission) answers 202 {job_id} with
#   a Location; GET /api/jobs/:id is for admins only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Scalar::Util qw(looks_like_number);
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60' });
sub h { Markets::Test::header(@_) }

# Percent-encodes a query value: the UTF-8 bytes of a Perl character string.
sub qenc {
	my ($s) = @_;
	utf8::encode($s);
	$s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
	return $s;
}
sub search {
	my ($q, %opt) = @_;
	my $path = '/api/markets/search?q=' . qenc($q) . (defined $opt{limit} ? "&limit=$opt{limit}" : '');
	return $t->get($path, $opt{headers} ? { headers => $opt{headers} } : undef);
}
sub ids_of { [map { $_->{id} } @{ $_[0]{json}{data} || [] }] }
sub top3 {
	my ($r) = @_;
	return join '; ', map { sprintf '%d (%.4f) %s', $_->{id}, $_->{score}, $_->{name} } @{ $r->{json}{data} || [] }[0 .. 2];
}
# The first result's id for q (undef when none).
sub first_id { my $r = search(@_); ($r->{json}{data} || [])->[0]{id} }

my %admin = (sub => '6001', role => 'admin');
my %moderator = (sub => '6002', role => 'moderator');
my %owner = (sub => '6003', role => 'user', email => 'owner@example.org');
my %other = (sub => '6004', role => 'user');

# ---- paraphrases: the curated market ranks first ------------------------------
# Each query is what a user might type: other words, order and inflections,
# sometimes a shared key word (a name, a ticker), never the market's title.
my @paraphrases = (
	[9001, 'bitcoin price over 150k by end of 2027'],
	[9002, 'spot ether ETF launching in the EU'],
	[9003, 'will the fed lower rates in march 2027'],
	[9004, 'US jobless rate going over 5 percent'],
	[9005, 'democrats winning the 2028 presidential race'],
	[9006, 'early UK general election before 2029'],
	[9007, 'argentina inflation dropping under 30%'],
	[9008, 'spacex starship landing on mars'],
	[9009, 'artemis moon landing with astronauts by 2027'],
	[9010, 'warmest year ever recorded 2027'],
	[9011, 'arctic sea ice minimum under 3 million km2'],
	[9012, 'brazil wins the world cup 2026'],
	[9013, 'lakers nba finals champions 2027'],
	[9014, 'man city premier league champions 2026-27'],
	[9015, 'djokovic winning one more grand slam'],
	[9016, 'apple folding iphone release'],
	[9017, 'when will openai ship gpt-6'],
	[9018, 'tesla robotaxi without safety driver in california'],
	[9019, 'WHO declares global health emergency 2027'],
	[9020, 'measles cases in the united states over 2000'],
	[9021, 'brent oil price above 100 dollars a barrel'],
	[9022, 'gold price over $4000 per ounce'],
	[9023, 'euro dollar parity 2027'],
	[9024, 'netflix subscriber count over 350 million'],
	[9025, 'new taylor swift album 2027'],
	[9026, 'streaming movie winning best picture at the oscars'],
	[9027, 'canada house prices dropping 10 percent'],
	[9028, 'bank of japan rate hike above 1 percent'],
	[9029, 'india economic growth above 7 percent'],
	[9030, 'chinese astronauts landing on the moon'],
	[9031, 'EVs majority of new car sales germany'],
	[9032, 'huge earthquake in california magnitude 8'],
	[9033, 'category 5 hurricane hitting florida'],
	[9034, 'amazon stock split announcement'],
	[9035, 'government shutdown 2027'],
	[9036, 'ukraine russia ceasefire deal'],
	[9037, 'autonomous trucks in texas'],
	[9038, 'nuclear fusion electricity to the grid by 2030'],
	[9039, 'gukesh world chess champion title defense'],
	[9040, 'eiffel tower closed for over a week'],
);
my $hits = 0;
for my $case (@paraphrases) {
	my ($want, $q) = @$case;
	my $r = search($q);
	my $got = ($r->{json}{data} || [])->[0]{id};
	my $ok = is($got, $want, "paraphrase ranks $want first: '$q'");
	$hits++ if $ok;
	diag("  '$q' (status $r->{status}) top 3: " . top3($r)) unless $ok;
}
diag(sprintf 'paraphrases ranked first: %d of %d', $hits, scalar @paraphrases);

# ---- contract --------------------------------------------------------------------
# Scores are JSON numbers in [-1, 1], best first, equal scores by ascending id.
sub check_order {
	my ($r, $name) = @_;
	my @d = @{ $r->{json}{data} || [] };
	my @bad_score = grep { !defined $_->{score} || !looks_like_number($_->{score}) || $_->{score} < -1 || $_->{score} > 1 } @d;
	ok(!@bad_score, "$name: every score is a number in [-1, 1]") or diag(explain(\@bad_score));
	unlike($r->{content}, qr/"score":\s*"/, "$name: scores are JSON numbers, not strings");
	my @out_of_order = grep {
		$d[$_ - 1]{score} < $d[$_]{score} || ($d[$_ - 1]{score} == $d[$_]{score} && $d[$_ - 1]{id} > $d[$_]{id})
	} 1 .. $#d;
	ok(!@out_of_order, "$name: descending by score, ties (equal scores as sent) by ascending id")
		or diag(join ', ', map { "$_->{id}:$_->{score}" } @d);
}
my $r = search('interest rates');
is($r->{status}, 200, 'search: 200');
like(h($r, 'Content-Type') // '', qr{^application/json; charset=utf-8$}, 'search: JSON');
is($r->{json}{success}, JSON::PP::true, 'search: success true');
is(scalar @{ $r->{json}{data} || [] }, 10, 'limit defaults to 10');
check_order($r, 'interest rates');
check_order(search('Will event 42 happen by 2027?', limit => 50), 'a generic question, limit 50');
check_order(search('the of and'), 'a query of stopwords only');

# Results are whole market objects (what GET /api/markets/:id answers) plus score.
my ($first) = @{ $r->{json}{data} || [] };
my %doc = %{ $first || {} };
my $score = delete $doc{score};
is_deeply([sort keys %{ $first || {} }], [sort qw(id name description status volume creator_id end_date created_at updated_at score)],
	'a result has the market fields and score');
is_deeply(\%doc, $t->get("/api/markets/$doc{id}")->{json}{data}, 'a result is the market as GET shows it (plus score)');
like($first->{volume} // '', qr/^\d+\.\d\d$/, 'volume is a decimal string');
unlike($r->{content}, qr/"volume":\s*\d/, 'volume is never a JSON number');
ok(defined $first->{id} && $first->{id} =~ /^\d+$/ && $r->{content} =~ /"id":\d/, 'id is a JSON integer');

is(scalar @{ search('bitcoin', limit => 1)->{json}{data} || [] }, 1, 'limit=1: one result');
is(scalar @{ search('bitcoin', limit => 50)->{json}{data} || [] }, 50, 'limit=50: fifty results');
my $l7 = search('bitcoin', limit => 7);
my $l50 = search('bitcoin', limit => 50);
is_deeply(ids_of($l7), [@{ ids_of($l50) }[0 .. 6]], 'limit=7 is the first 7 of limit=50');
for my $bad ('0', '51', 'abc', '-1', '', '1.5', '10abc') {
	$t->is_error($t->get("/api/markets/search?q=bitcoin&limit=$bad"), 400, 'bad_request', "limit='$bad'");
}
$t->is_error($t->get('/api/markets/search?q=bitcoin&limit=5&limit=6'), 400, 'bad_request', 'duplicate limit');
$t->is_error($t->get('/api/markets/search?q=bitcoin&q=gold'), 400, 'bad_request', 'duplicate q');

$t->is_error($t->get('/api/markets/search'), 400, 'bad_request', 'missing q');
$t->is_error($t->get('/api/markets/search?limit=5'), 400, 'bad_request', 'missing q (limit given)');
$t->is_error($t->get('/api/markets/search?q='), 400, 'bad_request', 'empty q');
$t->is_error($t->get('/api/markets/search?q=%20%20%20'), 400, 'bad_request', 'blank q');
$t->is_error($t->get('/api/markets/search?q=+%09+'), 400, 'bad_request', 'blank q (plus signs and a tab)');
$t->is_error($t->get('/api/markets/search?q=%FF'), 400, 'bad_request', 'q of invalid UTF-8 (%FF)');
$t->is_error($t->get('/api/markets/search?q=gold%C3'), 400, 'bad_request', 'q with a truncated UTF-8 sequence');
$t->is_error($t->get('/api/markets/search?q=%C0%AF'), 400, 'bad_request', 'q with an overlong UTF-8 encoding');
is(search('a' x 500)->{status}, 200, 'q of 500 ASCII characters: 200');
$t->is_error(search('a' x 501), 400, 'bad_request', 'q of 501 ASCII characters');
is(search("\x{e9}" x 500)->{status}, 200, 'q of 500 characters "é" (1,000 bytes): 200');
$t->is_error(search("\x{e9}" x 501), 400, 'bad_request', 'q of 501 characters "é"');
is(search("\x{1F600}" x 500)->{status}, 200, 'q of 500 four-byte characters: 200');
is(search("Z\x{fc}rich gold price")->{status}, 200, 'q with multibyte letters: 200');

# Who may search: anyone; a bad token is a 401 even here.
is(search('bitcoin', headers => $t->bearer(%other))->{status}, 200, 'with a token: 200');
my $bad = search('bitcoin', headers => { Authorization => 'Bearer not.a.token' });
$t->is_error($bad, 401, 'unauthorized', 'a bad token');
like(h($bad, 'WWW-Authenticate') // '', qr/^Bearer/, 'a bad token: WWW-Authenticate');
my $expired = search('bitcoin', headers => $t->bearer(%other, exp => time - 10));
$t->is_error($expired, 401, 'unauthorized', 'an expired token');

my $head = $t->request('HEAD', '/api/markets/search?q=bitcoin');
is($head->{status}, 200, 'HEAD: 200');
is($head->{content}, '', 'HEAD: no body');
like(h($head, 'Content-Type') // '', qr{^application/json}, 'HEAD: the GET content type');
my $post = $t->request('POST', '/api/markets/search?q=bitcoin', { headers => { %{ $t->bearer(%admin) },
	'Content-Type' => 'application/json' }, content => '{}' });
$t->is_error($post, 405, 'method_not_allowed', 'POST /api/markets/search');

# ---- a new market becomes searchable within seconds -----------------------------
sub write_req {
	my ($method, $path, $claims, $body) = @_;
	return $t->request($method, $path, { headers => { %{ $t->bearer(%$claims) }, 'Content-Type' => 'application/json' },
		defined $body ? (content => encode_json($body)) : () });
}
sub jobs_of {
	my ($id) = @_;
	return $t->sql("SELECT id, status, attempts FROM jobs WHERE type = 'index_market' "
		. "AND JSON_VALUE(payload, '\$.market_id') = $id ORDER BY id");
}
# Polls for up to secs seconds until the first result of q is (or is not) id.
sub wait_first {
	my ($secs, $q, $id, $negate) = @_;
	return $t->wait_until($secs, sub {
		my $got = first_id($q) // 0;
		$negate ? $got != $id : $got == $id;
	});
}

my $t0 = time;
my $created = write_req('POST', '/api/markets', \%owner, {
	name => 'Will the Zorblax glacier observatory open to tourists in 2031?',
	description => 'Resolves YES if the Zorblax high-altitude glacier observatory welcomes its first paying visitors during 2031.' });
my $post_took = time - $t0;
is($created->{status}, 201, 'create: 201') or diag($created->{content});
my $new = $created->{json}{data}{id} // 0;
ok($post_took < 1.5, sprintf('the POST answers at once (%.3f s): it only enqueues', $post_took));
my @jobs = jobs_of($new);
is(scalar @jobs, 1, 'the create committed one index_market job with it (a row the moment the 201 is back)');
my $paraphrase_new = 'zorblax observatory opening for visitors';
my $seen_at;
ok(wait_first(10, $paraphrase_new, $new), 'the new market ranks first for a paraphrase within 10 s')
	and $seen_at = time - $t0;
diag(sprintf 'new market searchable after %.2f s', $seen_at) if defined $seen_at;
ok($t->wait_until(10, sub { my @j = jobs_of($new); @j == 1 && $j[0][1] eq 'done' }), 'its job ends done')
	or diag(explain([jobs_of($new)]));
is_deeply([$t->sql("SELECT COUNT(*) FROM market_embeddings WHERE market_id = $new AND vector IS NOT NULL")], [[1]],
	'one stored vector for it');

# Edits re-index: a new topic finds it, the old one no longer does.
my $patched = write_req('PATCH', "/api/markets/$new", \%owner, {
	name => 'Will the Quillfeather lighthouse museum reopen after its renovation?',
	description => 'Resolves YES if the Quillfeather coastal lighthouse museum opens its doors again once the restoration works finish.' });
is($patched->{status}, 200, 'PATCH the name and description: 200') or diag($patched->{content});
is(scalar(my @after_patch = jobs_of($new)), 2, 'the text edit queued a second index job');
ok(wait_first(10, 'quillfeather lighthouse museum reopening', $new), 'the new topic finds it first within 10 s');
ok(wait_first(10, $paraphrase_new, $new, 1), 'the old topic no longer ranks it first');
my $old_rank = search($paraphrase_new, limit => 50);
ok(!grep({ $_->{id} == $new && $_->{score} > 0.2 } @{ $old_rank->{json}{data} || [] }),
	'the old topic scores it low if at all') or diag(top3($old_rank));
is(first_id('quillfeather lighthouse museum reopening', limit => 1), $new, 'search shows the edited market');
is(((search('quillfeather lighthouse', limit => 1)->{json}{data} || [])->[0]{name}) // '',
	'Will the Quillfeather lighthouse museum reopen after its renovation?', 'with its new name');

# A status change is not a text edit: no job.
my $closed = write_req('PATCH', "/api/markets/$new", \%owner, { status => 'closed' });
is($closed->{status}, 200, 'PATCH the status: 200');
is(scalar(my @after_status = jobs_of($new)), 2, 'a status change queues no index job');

# Identical texts have identical scores: the lower id comes first.
my @twins = map {
	write_req('POST', '/api/markets', \%owner, { name => 'Will the Vexmoor twin ferries both sail on 1 May 2031?',
		description => 'Resolves YES if both Vexmoor ferries leave port on 1 May 2031.' })->{json}{data}{id} // 0
} 1 .. 2;
ok($twins[0] && $twins[1] && $twins[0] < $twins[1], 'two markets with the same text');
ok($t->wait_until(10, sub {
	my $ids = ids_of(search('vexmoor ferries sailing', limit => 2));
	"@$ids" eq "@twins";
}), 'equal scores: ranked by ascending id') or diag(top3(search('vexmoor ferries sailing')));
my $tw = search('vexmoor ferries sailing', limit => 2)->{json}{data} || [];
is($tw->[0]{score}, $tw->[1]{score}, 'and their scores are equal');

# DELETE: gone from the results within seconds.
my $del = write_req('DELETE', "/api/markets/$new", \%moderator);
is($del->{status}, 204, 'DELETE: 204');
ok($t->wait_until(10, sub { !grep { $_ == $new } @{ ids_of(search('quillfeather lighthouse museum reopening', limit => 50)) } }),
	'the deleted market leaves the results within 10 s');
is_deeply([$t->sql("SELECT COUNT(*) FROM market_embeddings WHERE market_id = $new AND vector IS NOT NULL")], [[0]],
	'its vector is a tombstone');
# Every worker serves the deletion, not only the one asked first.
my @leftovers = grep { my $ids = ids_of(search('quillfeather lighthouse museum', limit => 50)); grep { $_ == $new } @$ids } 1 .. 10;
is(scalar @leftovers, 0, 'ten searches later: no worker still returns it');

# ---- POST /api/markets/:id/index and GET /api/jobs/:id ---------------------------
# Only the creator, a moderator or an admin may queue a re-index.
my ($creator_9013) = map { $_->[0] } $t->sql('SELECT creator_id FROM markets WHERE id = 9013');
$t->is_error(write_req('POST', '/api/markets/9013/index', \%other), 403, 'forbidden', 'index by a user who did not create it');
is(($t->sql("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND JSON_VALUE(payload, '\$.market_id') = 9013"))[0][0], 0,
	'the refused request queued nothing');
my %creator = (sub => "$creator_9013", role => 'user');
$r = write_req('POST', '/api/markets/9013/index', \%creator);
is($r->{status}, 202, 'index by its creator: 202') or diag($r->{content});
my $job_id = $r->{json}{data}{job_id};
ok(defined $job_id && $job_id =~ /^\d+$/ && $r->{content} =~ /"job_id":\d/, 'data.job_id is an integer');
is(h($r, 'Location'), $t->path("/api/jobs/" . ($job_id // '')), 'Location: /api/jobs/N (under the base path, if any)');
is_deeply([$t->sql("SELECT type, JSON_VALUE(payload, '\$.market_id') FROM jobs WHERE id = " . ($job_id // 0))],
	[['index_market', 9013]], 'the job row: index_market for market 9013');
my $job;
ok($t->wait_until(10, sub {
	$job = $t->get("/api/jobs/$job_id", { headers => $t->bearer(%admin) })->{json}{data};
	$job && $job->{status} eq 'done';
}), 'the queued job ends done') or diag(explain($job));
$r = $t->get("/api/jobs/$job_id", { headers => $t->bearer(%admin) });
is($r->{status}, 200, 'GET /api/jobs/:id as admin: 200');
$job = $r->{json}{data} || {};
ok(exists $job->{$_}, "a job has $_") for qw(id type status attempts last_error run_at created_at updated_at finished_at);
is($job->{id}, $job_id, 'id');
is($job->{type}, 'index_market', 'type');
is($job->{status}, 'done', 'status done');
is($job->{attempts}, 1, 'attempts 1');
ok(!defined $job->{last_error}, 'no last_error');
like($job->{$_} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "$_ is RFC 3339 UTC") for qw(run_at created_at updated_at finished_at);
is(h($r, 'Cache-Control'), 'no-store', 'a job is not cached');
is(first_id('lakers nba finals champions 2027'), 9013, 'the re-indexed market is still found');

$r = write_req('POST', '/api/markets/9001/index', \%moderator);
is($r->{status}, 202, 'index by a moderator: 202');
$r = write_req('POST', '/api/markets/9001/index', \%admin);
is($r->{status}, 202, 'index by an admin: 202');
$t->is_error(write_req('POST', '/api/markets/99999999/index', \%other), 404, 'not_found', 'index an unknown market');
$t->is_error(write_req('POST', '/api/markets/abc/index', \%other), 404, 'not_found', 'index a malformed id');
my $anon = $t->request('POST', '/api/markets/9001/index', { headers => { 'Content-Type' => 'application/json' } });
$t->is_error($anon, 401, 'unauthorized', 'index anonymously');
is(($t->sql("SELECT COUNT(*) FROM jobs WHERE JSON_VALUE(payload, '\$.market_id') = 99999999"))[0][0], 0,
	'no job for the unknown market');
$t->is_error($t->get('/api/markets/9001/index', { headers => $t->bearer(%admin) }), 405, 'method_not_allowed', 'GET the index route');

$t->is_error($t->get("/api/jobs/$job_id", { headers => $t->bearer(%other) }), 403, 'forbidden', 'a job to a user');
$t->is_error($t->get("/api/jobs/$job_id", { headers => $t->bearer(%moderator) }), 403, 'forbidden', 'a job to a moderator');
$t->is_error($t->get("/api/jobs/$job_id"), 401, 'unauthorized', 'a job to nobody');
$t->is_error($t->get('/api/jobs/99999999', { headers => $t->bearer(%admin) }), 404, 'not_found', 'an unknown job');
$t->is_error($t->get('/api/jobs/abc', { headers => $t->bearer(%admin) }), 404, 'not_found', 'a malformed job id');

# ---- /metrics ----------------------------------------------------------------------
my $m = $t->get('/metrics');
is($m->{status}, 200, '/metrics: 200');
like($m->{content}, qr/^markets_db_queries_total \d+$/m, 'markets_db_queries_total is there');
my ($queries) = $m->{content} =~ /^markets_db_queries_total (\d+)$/m;
ok(($queries // 0) > 0, 'and it counted the searches\' queries');
# API.md: /metrics shows "jobs by status".
my %names = map { /^(\w+)/ ? ($1 => 1) : () } grep { !/^#/ } split /\n/, $m->{content};
ok($m->{content} =~ /^markets_jobs\w*\{[^}]*status="done"[^}]*\} \d+$/m, '/metrics shows jobs by status')
	or diag('metrics shown: ' . join ' ', sort keys %names);

$t->finish;
done_testing;
