#!/usr/bin/env perl
# The MariaDB primary lost and restored on the replicated topology: while
# it is down, writes answer 503 with Retry-After and reads keep flowing
# from the replica (lists, positions, search, a market by id whether
# cached or not: one read from the replica is served but never cached);
# once it is back, writes work again and replication resumes by itself.
# fronts: nginx only — the topology is the point, not the front
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::UNIX;
use JSON::PP;
use Markets::Load;
use Markets::Test;
use Test::More;
Markets::Test::fronts_only(['nginx'], 'the topology is the point, not the front');

my $t = Markets::Test->new(topology => 'replicated', env => { MARKETS_WORKERS => 2, MARKETS_RATE_LIMIT => '1000000/60' });
my $root = $t->root;
my $json = JSON::PP->new->utf8->canonical;

sub post_json {
	my ($path, $sub, $body) = @_;
	return $t->request('POST', $path, { headers => { %{ $t->bearer(sub => $sub) },
		'Content-Type' => 'application/json' }, content => $json->encode($body) });
}
sub caught_up {
	my ($pos) = map { $_->[0] } $t->sql('SELECT @@gtid_binlog_pos');
	my ($r) = map { $_->[0] } $t->sql_at('mysql-replica', "SELECT MASTER_GTID_WAIT('$pos', 30)");
	return defined $r && $r eq '0';
}
sub cached_ids {
	my @ids;
	for my $sock (qw(memcached memcached-2)) {
		my $s = IO::Socket::UNIX->new(Peer => "$root/run/$sock.sock") or next;
		print $s "lru_crawler metadump all\r\n";
		while (my $line = <$s>) {
			last if $line =~ /^(END|ERROR)/;
			push @ids, $1 if $line =~ /^key=mk%3Am%3A(\d+) /;
		}
	}
	return @ids;
}

my @ids;
for my $i (1 .. 6) {
	my $r = post_json('/api/markets', 303, { name => "Before the loss $i", description => 'replicated' });
	push @ids, $r->{json}{data}{id} if $r->{status} == 201;
}
is(scalar @ids, 6, 'six markets created');
my $b = post_json("/api/markets/$ids[0]/positions", 303, { side => 'no', amount => '3.00' });
is($b->{status}, 201, 'a position bought');
ok(caught_up(), 'the replica has them');
my ($cached, $uncached) = @ids[0, 5];
ok($t->wait_until(10, sub {
	$t->get("/api/markets/$cached");
	grep { $_ == $cached } cached_ids();
}), "market $cached is cached");
ok(!(grep { $_ == $uncached } cached_ids()), "market $uncached is not");
ok($t->wait_until(20, sub { ($t->get('/readyz')->{json}{data}{replicas}[0]{state} // '') eq 'ok' }),
	'the replica is in service');

my @reads = ('/api/markets?limit=5', "/api/markets/$cached", "/api/markets/$ids[4]",
	"/api/markets/$ids[1]?fields=name", "/api/markets/$ids[0]/positions", '/api/markets/search?q=loss');
my $load = Markets::Load->start(port => $t->port, connections => 4, status_file => "$root/load.status",
	requests => [ map { { method => 'GET', path => $_ } } @reads ]);
ok($t->wait_until(20, sub { $load->answered > 100 }), 'reads under load');

kill 'KILL', $t->pid_of('mysqld');
my $w = post_json('/api/markets', 707, { name => 'While the primary is down', description => 'refused' });
is($w->{status}, 503, 'a write while the primary is down: 503');
like(Markets::Test::header($w, 'Retry-After') // '', qr/^\d+$/, 'with Retry-After');
is($w->{json}{code}, 'unavailable', 'and the contract\'s code');
my $p = post_json("/api/markets/$ids[2]/positions", 707, { side => 'yes', amount => '1.00' });
is($p->{status}, 503, 'a buy while the primary is down: 503');
my %during;
for my $path (@reads, "/api/markets/$uncached") {
	for my $who ({}, $t->bearer(sub => 808)) {
		my $r = $t->get($path, { headers => $who });
		$during{"$r->{status} $path"}++;
	}
}
is(join(" ", grep { !/^200 / } sort keys %during), "", "every read answers 200 from the replica, anonymous or not") or diag(explain(\%during));
ok(!(grep { $_ == $uncached } cached_ids()), 'a document read from the replica meanwhile was not cached');
my $answered = $load->answered;
ok($t->wait_until(20, sub { $load->answered > $answered + 200 }), 'the load keeps being answered');

ok($t->stack('start', $root, '--services', 'mariadb', '--topology', 'replicated'), 'the primary starts again');
my $after;
ok($t->wait_until(30, sub {
	$after = post_json('/api/markets', 707, { name => 'After the primary came back', description => 'accepted' });
	$after->{status} == 201;
}), 'writes work again');
ok(caught_up(), 'replication resumed: the replica has the new write');
ok($t->wait_until(10, sub {
	$t->get("/api/markets/$uncached");
	grep { $_ == $uncached } cached_ids();
}), "with the primary back, market $uncached is cached on its next read (what the check above looks at exists)");
my $seen = $t->get("/api/markets?creator_id=707&limit=1", { headers => $t->bearer(sub => 707) });
is($seen->{json}{data}[0]{id}, $after->{json}{data}{id}, 'its writer reads it');

my $res = $load->stop;
ok($res->{answers} > 0, "load: $res->{answers} reads");
is($res->{non_2xx}, 0, 'no read failed through the loss and the return of the primary')
	or diag(explain($res->{statuses}), explain($res->{samples}));
is($res->{errors}, 0, 'no failed exchange') or diag(explain($res->{error_kinds}));

$t->finish;
done_testing;
