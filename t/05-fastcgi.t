#!/usr/bin/perl
# The app's FastCGI side, spoken to directly on its socket (no nginx):
# what a front server never sends or sends only under stress — lying
# Content-Lengths, bodies and params over the caps, records split anywhere
# and padded oddly, management records, a second BEGIN_REQUEST, unknown
# roles, bad versions, aborts, garbage, slow partial requests. Each answer
# is the contract's status and JSON envelope, and the connection is kept
# or closed exactly as the FastCGI rules in src/server/conn.c say; nothing
# a peer sends crashes a worker or blocks another connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use Markets::Test;

use Markets::FastCGI;
Markets::Test::fronts_only(['nginx'],
	"it speaks FastCGI to the master's socket itself and starts no front, so every front would run the same test");

use constant FCGI => 'Markets::FastCGI';
use constant { REQUEST_COMPLETE => 0, CANT_MPX_CONN => 1, OVERLOADED => 2, UNKNOWN_ROLE => 3 };

my $MAX_BODY = 64 * 1024;
my $t = Markets::Test->new(services => [qw(app)], env => { MARKETS_MAX_BODY => '64k' });
my $sock = $t->app_socket;
my @workers_at_start = $t->worker_pids;
is(scalar @workers_at_start, 2, 'two workers at start');

local $SIG{PIPE} = 'IGNORE'; # the app may close while we write; see the garbage tests

sub conn { FCGI->connect($sock) }

sub begin_rec {
	my ($id, %a) = @_;
	return Markets::FastCGI::record(Markets::FastCGI::BEGIN_REQUEST, $id,
		pack('nCx5', $a{role} // Markets::FastCGI::RESPONDER, $a{keep} ? Markets::FastCGI::KEEP_CONN : 0), %a);
}

# The default params of a GET /healthz, with overrides; undef values are left out.
sub params_of {
	my (%over) = @_;
	my %p = (REQUEST_METHOD => 'GET', REQUEST_URI => '/healthz', SERVER_PROTOCOL => 'HTTP/1.1',
		REMOTE_ADDR => '127.0.0.1', %over);
	delete $p{$_} for grep { !defined $p{$_} } keys %p;
	return %p;
}

# A whole request: BEGIN, PARAMS (defaults + params, undef drops one), STDIN.
sub req {
	my (%a) = @_;
	my $id = $a{id} // 1;
	return begin_rec($id, keep => $a{keep}, role => $a{role})
		. Markets::FastCGI::params_records($id, params_of(%{ $a{params} || {} }))
		. Markets::FastCGI::stdin_records($id, $a{body} // '');
}

# Reads the answer to request id and decodes it: { status, headers, body,
# json, end, eof, records }.
sub answer {
	my ($c, $id, %a) = @_;
	my $r = $c->read_response(id => $id, timeout => $a{timeout} // 10);
	my $p = Markets::FastCGI::parse_cgi($r->{stdout});
	$p->{json} = eval { JSON::PP->new->decode($p->{body}) } if length $p->{body};
	return { %$p, end => $r->{end}, eof => $r->{eof}, records => $r->{records} };
}

# Asserts a completed request: status, and the envelope (healthz data on 200,
# the error envelope with a request_id equal to the X-Request-Id header else).
sub is_answer {
	my ($r, $status, $code, $name) = @_;
	is($r->{end}, REQUEST_COMPLETE, "$name: END_REQUEST with REQUEST_COMPLETE")
		or return diag(explain({ %$r, records => scalar @{ $r->{records} } }));
	is($r->{status}, $status, "$name: status $status") or diag($r->{body});
	like($r->{headers}{'content-type'} // '', qr{^application/json; charset=utf-8$}, "$name: JSON content type");
	is($r->{headers}{'content-length'}, length $r->{body}, "$name: Content-Length is exact");
	my $rid = $r->{headers}{'x-request-id'};
	ok(defined $rid && length $rid, "$name: X-Request-Id header");
	my $j = $r->{json};
	if ($status == 200) {
		is_deeply($j, { success => JSON::PP::true, data => { status => 'ok' } }, "$name: healthz envelope");
		return;
	}
	ok($j && ref $j eq 'HASH', "$name: body is a JSON object") or return diag($r->{body});
	is($j->{success}, JSON::PP::false, "$name: success false");
	is($j->{code}, $code, "$name: code $code");
	ok(defined $j->{error} && length $j->{error}, "$name: has a message");
	is($j->{request_id}, $rid, "$name: request_id matches the header");
}

# The connection serves a good request (KEEP_CONN, so it stays open after).
sub still_serves {
	my ($c, $name, $id) = @_;
	$id //= 1;
	my $ok = eval { $c->send_bytes(req(id => $id, keep => 1)); 1 };
	ok($ok, "$name: next request written") or return diag($@);
	my $r = answer($c, $id);
	is($r->{end}, REQUEST_COMPLETE, "$name: next request on the same connection ends");
	is($r->{status}, 200, "$name: next request on the same connection is 200");
}

# The app closed the connection: EOF, and nothing more sent.
sub is_closed {
	my ($c, $name) = @_;
	my $r = $c->read_response(timeout => 5);
	ok($r->{eof}, "$name: the app closed the connection");
	is(scalar @{ $r->{records} }, 0, "$name: no record after");
}

# A brand-new connection gets /healthz answered.
sub fresh_healthz {
	my ($name) = @_;
	my $r = FCGI->simple($sock);
	is($r->{status}, 200, "$name: a new connection is served");
}

# --- Plain requests and KEEP_CONN ---------------------------------------

{
	my $c = conn();
	$c->send_bytes(req());
	my $r = answer($c, 1);
	is_answer($r, 200, undef, 'GET /healthz');
	is($r->{headers}{'cache-control'}, 'no-store', 'GET /healthz: Cache-Control');
	like($r->{headers}{'x-request-id'}, qr/^[0-9a-f]{32}$/, 'GET /healthz: a fresh 32-hex request id');
	my @types = map { $_->[0] } @{ $r->{records} };
	is($types[-2], Markets::FastCGI::FCGI_STDOUT, 'an empty STDOUT closes the stream before END_REQUEST');
	is(length $r->{records}[-2][2], 0, 'the closing STDOUT is empty');
	is_closed($c, 'no KEEP_CONN');
}
{
	my $c = conn();
	my %seen;
	for my $id (1 .. 3) {
		$c->send_bytes(req(id => $id, keep => 1));
		my $r = answer($c, $id);
		is($r->{end}, REQUEST_COMPLETE, "KEEP_CONN request $id ends");
		is($r->{status}, 200, "KEEP_CONN request $id is 200");
		ok(!(grep { $_->[1] != $id } @{ $r->{records} }), "KEEP_CONN request $id: records carry id $id");
		$seen{ $r->{headers}{'x-request-id'} // '' }++;
	}
	is(scalar keys %seen, 3, 'three requests, three request ids');
	my $r = $c->read_response(timeout => 0.3);
	ok(!$r->{eof} && !@{ $r->{records} }, 'KEEP_CONN: the connection stays open and quiet');
	$c->close;
}
{
	# Pipelined: three whole requests in one write, answered in order.
	my $c = conn();
	$c->send_bytes(join '', map { req(id => $_, keep => 1) } 1 .. 3);
	for my $id (1 .. 3) {
		is(answer($c, $id)->{status}, 200, "pipelined request $id is 200");
	}
	$c->close;
}

# --- Content-Length that lies ------------------------------------------

my %json = (CONTENT_TYPE => 'application/json');
for my $case (
	['CONTENT_LENGTH 10, 5 bytes sent', { %json, CONTENT_LENGTH => 10 }, '"abc"'],
	['CONTENT_LENGTH 3, 10 bytes sent', { %json, CONTENT_LENGTH => 3 }, '"abcdefg"'],
	['CONTENT_LENGTH abc', { %json, CONTENT_LENGTH => 'abc' }, '"x"'],
	['CONTENT_LENGTH -1', { %json, CONTENT_LENGTH => '-1' }, ''],
	['CONTENT_LENGTH 1e3', { %json, CONTENT_LENGTH => '1e3' }, ''],
	['CONTENT_LENGTH 2^64', { %json, CONTENT_LENGTH => '18446744073709551616' }, ''],
) {
	my ($name, $params, $body) = @$case;
	my $c = conn();
	$c->send_bytes(req(keep => 1, params => $params, body => $body));
	is_answer(answer($c, 1), 400, 'bad_request', $name);
	still_serves($c, $name);
	$c->close;
}
{
	# The body split over several STDIN records still adds up.
	my $c = conn();
	my $body = '{"a":"' . ('x' x 20) . '"}';
	$c->send_bytes(begin_rec(1, keep => 1)
		. Markets::FastCGI::params_records(1, params_of(%json, CONTENT_LENGTH => length $body))
		. join('', map { Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, $_) } unpack('(a5)*', $body))
		. Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, ''));
	is_answer(answer($c, 1), 200, undef, 'a body in many STDIN records matching CONTENT_LENGTH');
	$c->close;
}

# --- Body cap (max_body = 64k here) ----------------------------------------

{
	my $name = 'CONTENT_LENGTH over max_body';
	my $c = conn();
	$c->send_bytes(begin_rec(1, keep => 1)
		. Markets::FastCGI::params_records(1, params_of(%json, CONTENT_LENGTH => $MAX_BODY + 1)));
	my $r = answer($c, 1, timeout => 5);
	is_answer($r, 413, 'payload_too_large', "$name (before any STDIN)");
	ok(eval { $c->send_bytes(Markets::FastCGI::stdin_records(1, 'x' x ($MAX_BODY + 1))); 1 },
		"$name: the body is still accepted on the wire (skipped)") or diag($@);
	still_serves($c, $name);
	$c->close;
}
{
	my $name = 'no CONTENT_LENGTH, body grows past max_body';
	my $c = conn();
	$c->send_bytes(begin_rec(1, keep => 1) . Markets::FastCGI::params_records(1, params_of(%json)));
	# 64k exactly is within the cap: no answer yet; one byte more is a 413 at once.
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, 'x' x 32768) x 2);
	my $early = $c->read_response(id => 1, timeout => 0.3);
	ok(!defined $early->{end} && !$early->{eof}, "$name: a body of exactly max_body is not refused");
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, 'x'));
	my $r = answer($c, 1, timeout => 5);
	is_answer($r, 413, 'payload_too_large', "$name (before the body ends)");
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, 'y' x 1000)
		. Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, ''));
	still_serves($c, $name);
	$c->close;
}
{
	my $body = '"' . ('x' x ($MAX_BODY - 2)) . '"';
	my $r = FCGI->simple($sock, params => { %json, CONTENT_LENGTH => length $body }, body => $body);
	is($r->{status}, 200, 'a JSON body of exactly max_body on GET /healthz is served');
}

# --- Media type ---------------------------------------------------------

for my $case (
	['text/plain with CONTENT_LENGTH', { CONTENT_TYPE => 'text/plain', CONTENT_LENGTH => 7 }],
	['text/plain without CONTENT_LENGTH', { CONTENT_TYPE => 'text/plain' }],
	['no CONTENT_TYPE with CONTENT_LENGTH', { CONTENT_LENGTH => 7 }],
	['no CONTENT_TYPE without CONTENT_LENGTH', {}],
) {
	my ($name, $params) = @$case;
	my $c = conn();
	$c->send_bytes(req(keep => 1, params => $params, body => '{"a":1}'));
	is_answer(answer($c, 1), 415, 'unsupported_media_type', "body as $name");
	still_serves($c, "body as $name");
	$c->close;
}
{
	# The type is decided before the body when CONTENT_LENGTH is known.
	my $c = conn();
	$c->send_bytes(begin_rec(1, keep => 1)
		. Markets::FastCGI::params_records(1, params_of(CONTENT_TYPE => 'text/plain', CONTENT_LENGTH => 7)));
	is_answer(answer($c, 1, timeout => 5), 415, 'unsupported_media_type', 'text/plain refused before STDIN');
	$c->send_bytes(Markets::FastCGI::stdin_records(1, '{"a":1}'));
	still_serves($c, 'text/plain refused before STDIN');
	$c->close;
}

# --- Params over the cap -------------------------------------------------

{
	my $c = conn();
	my $bytes = req(keep => 1, params => { HTTP_X_BIG => 'a' x (70 * 1024) });
	my $nparams = () = $bytes =~ /\x01\x04\x00\x01/g;
	cmp_ok($nparams, '>=', 3, 'the big param spans several PARAMS records');
	$c->send_bytes($bytes);
	is_answer(answer($c, 1), 431, 'headers_too_large', 'params over 64 KiB');
	still_serves($c, 'params over 64 KiB');
	$c->close;
}
{
	my $r = FCGI->simple($sock, params => { HTTP_X_BIG => 'a' x (60 * 1024) });
	is($r->{status}, 200, 'params just under 64 KiB are served');
}
{
	# More than 256 params is a 431 too (src/server/fcgi.h MK_FCGI_MAX_PARAMS).
	my $r = FCGI->simple($sock, params => { map { ("HTTP_X_$_" => 'v') } 1 .. 300 });
	is($r->{status}, 431, '300 params are a 431');
}
{
	# A NUL inside a value, or a truncated pair, is a malformed stream: 400.
	my $c = conn();
	$c->send_bytes(begin_rec(1, keep => 1)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, Markets::FastCGI::pair(REQUEST_METHOD => 'GET')
			. Markets::FastCGI::pair(REQUEST_URI => "/healthz\0x"))
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '')
		. Markets::FastCGI::stdin_records(1, ''));
	is_answer(answer($c, 1), 400, 'bad_request', 'NUL inside a param value');
	$c->send_bytes(begin_rec(1, keep => 1)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, "\x0b\x80\x00\x00")
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '')
		. Markets::FastCGI::stdin_records(1, ''));
	is_answer(answer($c, 1), 400, 'bad_request', 'a truncated name-value pair');
	still_serves($c, 'malformed params');
	$c->close;
}

# --- Records arriving in odd shapes ------------------------------------------

{
	my $c = conn();
	my $bytes = req();
	for my $i (0 .. length($bytes) - 1) {
		$c->send_bytes(substr $bytes, $i, 1);
		sleep 0.001 if $i % 4 == 0;
	}
	is_answer(answer($c, 1), 200, undef, 'a request fed one byte at a time');
}
{
	my $c = conn();
	my %p = params_of(HTTP_X_PAD => 'padded');
	my $pairs = join '', map { Markets::FastCGI::pair($_, $p{$_}) } sort keys %p;
	my $half = int(length($pairs) / 2) + 1;
	my $bytes = begin_rec(1, padding => 3)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, 0, $half), padding => 3)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, $half), padding => 255)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '', padding => 7)
		. Markets::FastCGI::record(Markets::FastCGI::FCGI_STDIN, 1, '', padding => 1);
	my @sizes = (3, 1, 7, 13, 2, 9, 5, 17);
	my $i = 0;
	while (length $bytes) {
		$c->send_bytes(substr($bytes, 0, $sizes[$i++ % @sizes], ''));
		sleep 0.002;
	}
	is_answer(answer($c, 1), 200, undef, 'records split at odd places, with padding 3, 255, 7, 1');
}
{
	# A name-value pair split across PARAMS records, inside its length prefix.
	my $c = conn();
	my %p = params_of(HTTP_X_LONG => 'l' x 300);
	my $pairs = join '', map { Markets::FastCGI::pair($_, $p{$_}) } sort keys %p;
	my $at = index($pairs, 'HTTP_X_LONG') - 3; # inside the 4-byte value length
	$c->send_bytes(begin_rec(1)
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, 0, $at))
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, $at))
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '')
		. Markets::FastCGI::stdin_records(1, ''));
	is_answer(answer($c, 1), 200, undef, 'a pair split inside its length across records');
}

# --- Management records -------------------------------------------------

sub decode_pairs {
	my ($s) = @_;
	my %h;
	my $len = sub {
		my $b = ord substr($s, 0, 1);
		return unpack('C', substr($s, 0, 1, '')) if $b < 128;
		return unpack('N', substr($s, 0, 4, '')) & 0x7fffffff;
	};
	while (length $s) {
		my ($n, $v) = ($len->(), $len->());
		my $name = substr($s, 0, $n, '');
		$h{$name} = substr($s, 0, $v, '');
	}
	return \%h;
}
{
	my $c = conn();
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::GET_VALUES, 0,
		Markets::FastCGI::pair(FCGI_MPXS_CONNS => '') . Markets::FastCGI::pair(FCGI_MAX_CONNS => '')
		. Markets::FastCGI::pair(FCGI_NO_SUCH_VALUE => '')));
	my $r = $c->read_response(until_type => Markets::FastCGI::GET_VALUES_RESULT, timeout => 5);
	my ($res) = grep { $_->[0] == Markets::FastCGI::GET_VALUES_RESULT } @{ $r->{records} };
	ok($res, 'GET_VALUES is answered with GET_VALUES_RESULT');
	is($res && $res->[1], 0, 'GET_VALUES_RESULT has request id 0');
	my $v = decode_pairs($res ? $res->[2] : '');
	is($v->{FCGI_MPXS_CONNS}, '0', 'FCGI_MPXS_CONNS = 0');
	like($v->{FCGI_MAX_CONNS} // '', qr/^[1-9]\d*$/, 'FCGI_MAX_CONNS is a positive number');
	ok(!exists $v->{FCGI_NO_SUCH_VALUE}, 'an unknown name is left out');
	is_deeply([sort keys %$v], [qw(FCGI_MAX_CONNS FCGI_MPXS_CONNS)], 'only the asked, known names');

	$c->send_bytes(Markets::FastCGI::record(99, 0, 'whatever'));
	$r = $c->read_response(until_type => Markets::FastCGI::UNKNOWN_TYPE, timeout => 5);
	my ($unk) = grep { $_->[0] == Markets::FastCGI::UNKNOWN_TYPE } @{ $r->{records} };
	ok($unk, 'an unknown management type is answered with UNKNOWN_TYPE');
	is($unk && $unk->[1], 0, 'UNKNOWN_TYPE has request id 0');
	is($unk && length $unk->[2], 8, 'UNKNOWN_TYPE body is 8 bytes');
	is($unk && ord $unk->[2], 99, 'UNKNOWN_TYPE names type 99');
	still_serves($c, 'after management records');
	$c->close;
}

# --- One request at a time per connection ---------------------------------

{
	my $c = conn();
	my %p = params_of();
	my $pairs = join '', map { Markets::FastCGI::pair($_, $p{$_}) } sort keys %p;
	my $half = int(length($pairs) / 2);
	$c->send_bytes(begin_rec(1, keep => 1) . Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, 0, $half)));
	$c->send_bytes(begin_rec(2, keep => 1));
	my $r2 = $c->read_response(id => 2, timeout => 5);
	is($r2->{end}, CANT_MPX_CONN, 'a second BEGIN_REQUEST mid-params: END_REQUEST CANT_MPX_CONN');
	ok(!(grep { $_->[0] == Markets::FastCGI::FCGI_STDOUT } @{ $r2->{records} }), 'the refused request gets no STDOUT');
	ok(!(grep { $_->[1] == 1 } @{ $r2->{records} }), 'request 1 is not answered yet');
	# Records of id 2 (and others) are ignored while id 1 is active.
	$c->send_bytes(Markets::FastCGI::params_records(2, params_of(REQUEST_URI => '/nope'))
		. Markets::FastCGI::stdin_records(2, 'junk')
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, $half))
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '')
		. Markets::FastCGI::stdin_records(1, ''));
	my $r1 = answer($c, 1);
	is_answer($r1, 200, undef, 'request 1 completes after the refused BEGIN');
	ok(!(grep { $_->[1] == 2 } @{ $r1->{records} }), 'nothing more for id 2');
	still_serves($c, 'after CANT_MPX_CONN', 2);
	$c->close;
}
{
	my $c = conn();
	$c->send_bytes(req(role => Markets::FastCGI::AUTHORIZER, keep => 1));
	my $r = $c->read_response(id => 1, timeout => 5);
	is($r->{end}, UNKNOWN_ROLE, 'role AUTHORIZER: END_REQUEST UNKNOWN_ROLE');
	ok(!(grep { $_->[0] == Markets::FastCGI::FCGI_STDOUT } @{ $r->{records} }), 'role AUTHORIZER: no STDOUT');
	$c->send_bytes(req(role => 3, id => 5, keep => 1));
	$r = $c->read_response(id => 5, timeout => 5);
	is($r->{end}, UNKNOWN_ROLE, 'role FILTER: END_REQUEST UNKNOWN_ROLE');
	still_serves($c, 'after UNKNOWN_ROLE');
	$c->close;
}

# --- Protocol violations ----------------------------------------------------

{
	my $c = conn();
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::BEGIN_REQUEST, 1,
		pack('nCx5', Markets::FastCGI::RESPONDER, Markets::FastCGI::KEEP_CONN), version => 2));
	is_closed($c, 'a version 2 record');
	fresh_healthz('after a version 2 record');
}
{
	my $c = conn();
	$c->send_bytes(req(keep => 1) . Markets::FastCGI::record(Markets::FastCGI::BEGIN_REQUEST, 1,
		pack('nCx5', 1, 1), version => 0));
	is($c->read_response(id => 1)->{end}, REQUEST_COMPLETE, 'a whole request before a version 0 record is answered');
	is_closed($c, 'then the version 0 record');
}
{
	# A PARAMS record after the params ended is a violation: closed.
	my $c = conn();
	$c->send_bytes(begin_rec(1, keep => 1) . Markets::FastCGI::params_records(1, params_of())
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, Markets::FastCGI::pair(A => 'b')));
	is_closed($c, 'PARAMS after the params ended');
}
{
	my $c = conn();
	my %p = params_of();
	my $pairs = join '', map { Markets::FastCGI::pair($_, $p{$_}) } sort keys %p;
	$c->send_bytes(begin_rec(3, keep => 1) . Markets::FastCGI::record(Markets::FastCGI::PARAMS, 3, substr($pairs, 0, 10)));
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::ABORT_REQUEST, 3, ''));
	my $r = $c->read_response(id => 3, timeout => 5);
	is($r->{end}, REQUEST_COMPLETE, 'ABORT_REQUEST mid-params: END_REQUEST for that id');
	is($r->{stdout}, '', 'ABORT_REQUEST: no response body');
	# The rest of the aborted request's records are ignored.
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::PARAMS, 3, substr($pairs, 10))
		. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 3, ''));
	still_serves($c, 'after ABORT_REQUEST');
	$c->close;
}
{
	my $c = conn();
	$c->send_bytes(begin_rec(1) . Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, 'x'));
	$c->send_bytes(Markets::FastCGI::record(Markets::FastCGI::ABORT_REQUEST, 1, ''));
	is($c->read_response(id => 1, timeout => 5)->{end}, REQUEST_COMPLETE, 'ABORT_REQUEST without KEEP_CONN: END_REQUEST');
	is_closed($c, 'ABORT_REQUEST without KEEP_CONN');
}

# --- What the http layer checks first ------------------------------------

{
	my $c = conn();
	$c->send_bytes(req(keep => 1, params => { REQUEST_URI => undef }));
	is_answer(answer($c, 1), 400, 'bad_request', 'REQUEST_URI missing');
	$c->send_bytes(req(keep => 1, params => { REQUEST_URI => 'healthz' }));
	is_answer(answer($c, 1), 400, 'bad_request', 'REQUEST_URI not absolute');
	$c->send_bytes(req(keep => 1, params => { REQUEST_URI => '/healthz?x=%00' }));
	is_answer(answer($c, 1), 400, 'bad_request', 'REQUEST_URI /healthz?x=%00');
	$c->send_bytes(req(keep => 1, params => { REQUEST_METHOD => 'BREW' }));
	my $r = answer($c, 1);
	is_answer($r, 405, 'method_not_allowed', 'BREW /healthz');
	is($r->{headers}{allow}, 'GET, HEAD, OPTIONS', 'BREW /healthz: Allow');
	$c->send_bytes(req(keep => 1, params => { REQUEST_METHOD => undef }));
	is_answer(answer($c, 1), 405, 'method_not_allowed', 'REQUEST_METHOD missing');
	$c->send_bytes(req(keep => 1, params => { REQUEST_METHOD => 'HEAD' }));
	$r = answer($c, 1);
	is($r->{status}, 200, 'HEAD /healthz is 200');
	is($r->{body}, '', 'HEAD: no body');
	still_serves($c, 'after http-layer errors');
	$c->close;
}

# --- X-Request-Id ---------------------------------------------------------

{
	my $c = conn();
	my $sane = 'abc.DEF_1-2';
	$c->send_bytes(req(keep => 1, params => { HTTP_X_REQUEST_ID => $sane }));
	my $r = answer($c, 1);
	is($r->{headers}{'x-request-id'}, $sane, 'a sane X-Request-Id is echoed');
	$c->send_bytes(req(keep => 1, params => { HTTP_X_REQUEST_ID => $sane, REQUEST_URI => '/nope' }));
	$r = answer($c, 1);
	is_answer($r, 404, 'not_found', 'a sane X-Request-Id on an error');
	is($r->{json} && $r->{json}{request_id}, $sane, "the error body's request_id is the incoming id");
	my $max = 'A' x 64;
	$c->send_bytes(req(keep => 1, params => { HTTP_X_REQUEST_ID => $max }));
	is(answer($c, 1)->{headers}{'x-request-id'}, $max, 'a 64-char X-Request-Id is echoed');

	for my $case (['65 chars', 'B' x 65], ['a space', 'abc DEF'], ['a slash', 'abc/def'],
		['empty', ''], ['non-ASCII', "abc\xc3\xa9"]) {
		my ($name, $bad) = @$case;
		(my $cleaned = $bad) =~ s/[^A-Za-z0-9._-]//g;
		$c->send_bytes(req(keep => 1, params => { HTTP_X_REQUEST_ID => $bad, REQUEST_URI => '/nope' }));
		$r = answer($c, 1);
		my $rid = $r->{headers}{'x-request-id'} // '';
		like($rid, qr/^[0-9a-f]{32}$/, "X-Request-Id with $name: replaced by a fresh 32-hex id");
		# (A short cleaned string like "abc" can occur in a random hex id by
		# chance: only a long one inside the id would be a copy.)
		my $copy = $rid eq $bad || $rid eq $cleaned || $rid eq substr($bad, 0, 64)
			|| (length $cleaned >= 8 && index($rid, $cleaned) >= 0);
		ok(!$copy, "X-Request-Id with $name: never a cleaned-up copy");
		is($r->{json} && $r->{json}{request_id}, $rid, "X-Request-Id with $name: error body carries the fresh id");
	}
	$c->close;
}

# --- Garbage -----------------------------------------------------------------

{
	# Not FastCGI at all: the first byte is no version 1.
	my $c = conn();
	my $junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" . ("\xff" x (64 * 1024));
	eval { $c->send_bytes($junk) }; # the app may close while this is written
	is_closed($c, 'an HTTP request on the FastCGI socket');
	srand(20241125);
	for my $round (1 .. 6) {
		my $g = join '', map { chr int rand 256 } 1 .. 64 * 1024;
		# Half the rounds start like a version 1 record so the parser goes deeper.
		substr($g, 0, 1, "\x01") if $round % 2;
		my $gc = conn();
		eval { $gc->send_bytes($g) };
		my $r = $gc->read_response(timeout => 0.5);
		ok($r->{eof} || !grep({ $_->[0] == Markets::FastCGI::FCGI_STDOUT && length $_->[2] } @{ $r->{records} }),
			"garbage round $round: closed or ignored (no response body)");
		$gc->close;
	}
	fresh_healthz('after garbage');
	is(scalar $t->worker_pids, 2, 'after garbage: the master still has two workers');
	is_deeply([$t->worker_pids], \@workers_at_start, 'after garbage: no worker was replaced (none crashed)');
}

# --- A slow client blocks nobody -----------------------------------------

{
	my %p = params_of();
	my $pairs = join '', map { Markets::FastCGI::pair($_, $p{$_}) } sort keys %p;
	my $half = int(length($pairs) / 2);
	# Several, so each worker surely holds one.
	my @slow = map { conn() } 1 .. 4;
	$_->send_bytes(begin_rec(1, keep => 1) . Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, 0, $half)))
		for @slow;
	sleep 0.2;
	for my $n (1 .. 4) {
		my $c = conn();
		$c->send_bytes(req());
		# A hang guard, not a benchmark: a blocked worker would wait for request_timeout (30s).
		my $r = answer($c, 1, timeout => 2);
		is($r->{status}, 200, "with slow partial requests open, another connection is answered ($n)");
		$c->close;
	}
	for my $i (0 .. $#slow) {
		$slow[$i]->send_bytes(Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, substr($pairs, $half))
			. Markets::FastCGI::record(Markets::FastCGI::PARAMS, 1, '') . Markets::FastCGI::stdin_records(1, ''));
		is(answer($slow[$i], 1)->{status}, 200, "the slow request completes once whole ($i)");
		$slow[$i]->close;
	}
}

is(scalar $t->worker_pids, 2, 'two workers at the end');
is_deeply([$t->worker_pids], \@workers_at_start, 'the same workers at the end: none crashed');

$t->finish;
done_testing;
