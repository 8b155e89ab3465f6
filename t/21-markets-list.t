#!/usr/bin/perl
# GET /api/markets over the 10,000 seeded markets, checked against MariaDB
# itself: every sort and filter returns what ORDER BY/WHERE would, keyset
# cursors walk a whole list with no row missed or repeated and cost the same
# deep as on the first page (unlike offset), every plan uses an index, the
# page is one query (two with include=creator or count=exact), and every bad
# parameter is a 400 naming it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Markets::Test;

my $t = Markets::Test->new(seed => 1, env => { MARKETS_RATE_LIMIT => '1000000/60', MARKETS_JOB_RUNNERS => 0 });
sub list { my $r = $t->get('/api/markets' . (@_ ? "?$_[0]" : '')); is($r->{status}, 200, "GET /api/markets?$_[0]") or diag($r->{content}); $r->{json} }
sub ids { [map { $_->{id} } @{ $_[0]{data} }] }
sub sql_ids { [map { $_->[0] } $t->sql($_[0])] }
sub stat_sum {
	my ($like) = @_;
	my $sum = 0;
	$sum += $_->[1] for $t->sql("SHOW GLOBAL STATUS LIKE '$like'");
	return $sum;
}

# Defaults: newest first, 20, meta.
my $d = list('');
is(scalar @{ $d->{data} }, 20, 'default limit 20');
is_deeply(ids($d), sql_ids('SELECT id FROM markets ORDER BY created_at DESC, id DESC LIMIT 20'), 'default sort -created_at');
is_deeply([sort keys %{ $d->{meta} }], [qw(limit next_cursor offset)], 'meta: limit, offset, next_cursor');
is($d->{meta}{limit}, 20, 'meta.limit');
is($d->{meta}{offset}, 0, 'meta.offset');

# Every sort and filter against SQL.
my %order = (volume => 'volume ASC, id ASC', '-volume' => 'volume DESC, id DESC', created_at => 'created_at ASC, id ASC',
	'-created_at' => 'created_at DESC, id DESC', name => 'name ASC, id ASC', '-name' => 'name DESC, id DESC');
for my $sort (sort keys %order) {
	for my $filter ('', 'status=active', 'status=resolved', 'creator_id=42') {
		(my $where = $filter) =~ s/^status=(\w+)$/status = '$1'/;
		$where =~ s/^creator_id=(\d+)$/creator_id = $1/;
		my $sql = 'SELECT id FROM markets' . ($where ? " WHERE $where" : '') . " ORDER BY $order{$sort} LIMIT 37";
		is_deeply(ids(list("sort=$sort&limit=37" . ($filter ? "&$filter" : ''))), sql_ids($sql), "sort=$sort $filter");
	}
}

# Keyset: a whole filtered list, page by page, exactly once each.
my (@walked, $cursor, $pages);
do {
	my $page = list('status=closed&sort=name&limit=100' . (defined $cursor ? "&cursor=$cursor" : ''));
	push @walked, @{ ids($page) };
	$cursor = $page->{meta}{next_cursor};
	$pages++;
} while (defined $cursor && $pages < 50);
is_deeply(\@walked, sql_ids("SELECT id FROM markets WHERE status = 'closed' ORDER BY name, id"),
	"cursor walk: every closed market once, in order ($pages pages)");
my $last = list('status=closed&sort=name&limit=100&offset=3300');
is($last->{meta}{next_cursor}, undef, 'next_cursor is null on the last page');
is_deeply(ids(list('sort=-volume&limit=50&offset=120')), sql_ids('SELECT id FROM markets ORDER BY volume DESC, id DESC LIMIT 50 OFFSET 120'), 'offset');

# count=exact, fields, include=creator.
is(list('status=active&count=exact&limit=1')->{meta}{total}, ($t->sql("SELECT COUNT(*) FROM markets WHERE status = 'active'"))[0][0], 'count=exact');
is(list('creator_id=7&count=exact')->{meta}{total}, 10, 'count=exact with creator_id');
my $f = list('fields=name,volume&limit=3');
is_deeply([sort keys %{ $f->{data}[0] }], [qw(id name volume)], 'fields=name,volume');
my $c = list('include=creator&fields=name&limit=100&sort=volume');
my %users = map { $_->[0] => { id => $_->[0], name => $_->[1], email => $_->[2] } } $t->sql('SELECT id, name, email FROM users');
my %creator_of = map { $_->[0] => $_->[1] } $t->sql('SELECT id, creator_id FROM markets');
my @wrong = grep {
	my $want = $users{ $creator_of{ $_->{id} } };
	!$_->{creator} || $_->{creator}{id} != $want->{id} || $_->{creator}{name} ne $want->{name} || exists $_->{creator}{email};
} @{ $c->{data} };
is(scalar @wrong, 0, 'include=creator: every market of the page has its own creator, without email for anonymous readers') or diag(explain $wrong[0]);
is(scalar @{ $c->{data} }, 100, 'a page of 100 markets with creators');
# An admin sees every email; a user only its own.
my $as_admin = $t->get('/api/markets?include=creator&fields=name&limit=100&sort=volume',
	{ headers => $t->bearer(sub => '999001', role => 'admin') })->{json};
@wrong = grep { ($_->{creator}{email} // '') ne $users{ $creator_of{ $_->{id} } }{email} } @{ $as_admin->{data} };
is(scalar @wrong, 0, 'include=creator read by an admin: every creator with its email') or diag(explain $wrong[0]);
my $one = $c->{data}[0]{creator}{id};
my $as_one = $t->get("/api/markets?include=creator&fields=name&limit=100&sort=volume",
	{ headers => $t->bearer(sub => "$one", role => 'user') })->{json};
my @with = grep { exists $_->{creator}{email} } @{ $as_one->{data} };
ok(@with && !grep({ $_->{creator}{id} != $one } @with), "include=creator read by user $one: only its own email") or diag(explain \@with);

# Statements per request: 1 for a page, 2 with include=creator, 2 with count=exact.
# Counted by the app for requests only (markets_db_queries_total): the
# server's own Com_stmt_execute also sees the workers' index refreshes and
# the job runner's polls, which run whatever the requests do.
sub request_statements {
	my ($n) = $t->get('/metrics')->{content} =~ /^markets_db_queries_total (\d+)$/m;
	return $n // die 'no markets_db_queries_total in /metrics';
}
for my $case (['limit=100', 1], ['limit=100&include=creator', 2], ['limit=5&count=exact', 2]) {
	my ($q, $want) = @$case;
	my $before = request_statements();
	$t->get("/api/markets?$q") for 1 .. 5;
	is(request_statements() - $before, 5 * $want, "?$q: $want statement(s) per request, whatever the page size");
}
# And the server agrees when nothing runs beside the requests: no runner
# polls here, and the workers' one-second refreshes are counted out.
{
	my $bg = sub { my ($n) = $t->get('/metrics')->{content} =~ /^markets_db_background_queries_total (\d+)$/m; $n // 0 };
	# Within one: a refresh can run between reading MariaDB's count and the
	# app's. On a loaded machine more work may land in the window: the best
	# of three tries counts (five pages that cost more would cost it in
	# every try).
	my @tries;
	for (1 .. 3) {
		my ($before, $bg_before) = (stat_sum('Com_stmt_execute'), $bg->());
		$t->get('/api/markets?limit=100') for 1 .. 5;
		my ($after, $bg_after) = (stat_sum('Com_stmt_execute'), $bg->());
		push @tries, $after - $before - ($bg_after - $bg_before);
		last if abs($tries[-1] - 5) <= 1;
	}
	my ($pages) = sort { abs($a - 5) <=> abs($b - 5) } @tries;
	cmp_ok(abs($pages - 5), '<=', 1, "MariaDB executed about 5 statements for 5 pages besides background work ($pages; tries: @tries)");
}

# Deep pages: a keyset page deep in the list reads as few rows as the first;
# an offset page reads every row it skips.
my $deep = list('sort=-volume&limit=20&offset=5000');
my $deep_cursor = list('sort=-volume&limit=20&offset=4980')->{meta}{next_cursor};
my $reads = sub { my $before = stat_sum('Handler_read%'); $t->get("/api/markets?$_[0]"); stat_sum('Handler_read%') - $before };
my $first = $reads->('sort=-volume&limit=20');
my $keyset = $reads->("sort=-volume&limit=20&cursor=$deep_cursor");
my $offset = $reads->('sort=-volume&limit=20&offset=5000');
ok($first < 100, "the first page of an unfiltered list reads about a page of rows ($first), not the table");
ok($keyset <= $first * 2 + 10, "a keyset page 5,000 deep reads about what the first does ($keyset vs $first rows)");
ok($offset > 5000, "an offset page 5,000 deep reads past the skipped rows ($offset)");
is_deeply(ids(list("sort=-volume&limit=20&cursor=$deep_cursor")), ids($deep), 'cursor and offset agree on that page');

# Every list query's plan uses an index and, with a status filter, no filesort.
for my $sort (sort keys %order) {
	my ($col, $dir) = $order{$sort} =~ /^(\w+) (\w+)/;
	my @plan = $t->sql("EXPLAIN SELECT id FROM markets WHERE status = 'active' ORDER BY $col $dir, id $dir LIMIT 21");
	ok($plan[0][5] && $plan[0][5] =~ /status_$col|status/, "status + sort=$sort: index $plan[0][5]") or diag(explain \@plan);
	unlike($plan[0][9] // '', qr/filesort/, "status + sort=$sort: no filesort");
	@plan = $t->sql("EXPLAIN SELECT id FROM markets ORDER BY $col $dir, id $dir LIMIT 21");
	unlike($plan[0][9] // '', qr/filesort/, "sort=$sort alone: no filesort (index $plan[0][5])");
}

# Bad parameters: a 400 naming each.
my $good = list('limit=2')->{meta}{next_cursor};
(my $tampered = $good) =~ s/^(.)(.)/$1 . ($2 eq 'A' ? 'B' : 'A')/e;
my @bad = (
	['status=open', 'status'], ['status=', 'status'], ['status=active&status=closed', 'status'],
	['creator_id=0', 'creator_id'], ['creator_id=-1', 'creator_id'], ['creator_id=abc', 'creator_id'],
	['creator_id=99999999999999999999', 'creator_id'], ['creator_id=007', 'creator_id'],
	['sort=price', 'sort'], ['sort=', 'sort'], ['sort=VOLUME', 'sort'],
	['limit=0', 'limit'], ['limit=101', 'limit'], ['limit=1e2', 'limit'], ['limit=abc', 'limit'], ['limit=', 'limit'],
	['limit=-5', 'limit'], ['limit=20&limit=30', 'limit'], ['limit=2.5', 'limit'],
	['offset=-1', 'offset'], ['offset=x', 'offset'], ['offset=1000000001', 'offset'], ['offset=10001', 'offset'],
	['cursor=garbage', 'cursor'], ["cursor=$tampered", 'cursor'], ["cursor=$good&offset=0", 'cursor'],
	["cursor=$good&sort=volume", 'cursor'], ["cursor=$good&status=active", 'cursor'], ['cursor=', 'cursor'],
	['count=estimate', 'count'], ['fields=nope', 'fields'], ['include=users', 'include'],
);
for my $case (@bad) {
	my ($q, $param) = @$case;
	my $r = $t->get("/api/markets?$q");
	$t->is_error($r, 400, 'bad_request', "?$q");
	like($r->{json} && $r->{json}{error} // '', qr/'\Q$param\E'/, "?$q: names '$param'");
}

$t->finish;
done_testing;
