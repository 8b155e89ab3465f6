#!/usr/bin/perl
# Configuration at start-up, as an operator meets it: a bad file stops the
# start with file, line and reason (and a non-zero exit, before any socket
# is opened); MARKETS_<KEY> overrides a file; --test-config checks and exits.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

my $bin = Markets::Test::build_dir() . '/markets';
my $repo = Markets::Test::repo();
my $dir = tempdir(CLEANUP => 1);

sub run {
	my ($env, @args) = @_;
	local %ENV = (%ENV, %$env);
	my $out = `'$bin' @args 2>&1`;
	return ($? >> 8, $out);
}
sub conf { my ($name, $text) = @_; open my $fh, '>', "$dir/$name" or die $!; print $fh $text; close $fh; "$dir/$name" }

my ($rc, $out) = run({}, '--config', "$repo/conf/markets.conf", '--test-config');
is($rc, 0, 'the shipped conf/markets.conf is valid');

my @bad = (
	["workers = 2\nwokers = 3\n", ':2: unknown key \'wokers\''],
	["# x\n\nmax_body = 1q\n", ':3: max_body: not a size'],
	["workers = 2\nworkers = 3\n", ":2: 'workers' is set twice"],
	["jwt_secret = short\n", ':1: jwt_secret: must be at least 32 bytes'],
	["log_level = loud\n", ':1: log_level: must be one of'],
	["just words\n", ':1: expected \'key = value\''],
);
for my $case (@bad) {
	my ($text, $want) = @$case;
	my $file = conf('bad.conf', $text);
	my $sock = "$dir/never.sock";
	($rc, $out) = run({}, '--config', $file, '--listen', "unix:$sock");
	is($rc, 1, "bad config exits 1: $want");
	like($out, qr/\Q$file$want\E/, "names file, line and reason: $want");
	ok(!-e $sock, 'no socket was opened');
}
($rc, $out) = run({}, '--config', "$dir/missing.conf", '--test-config');
is($rc, 1, 'a missing file stops the start');
like($out, qr/\Q$dir\/missing.conf\E: No such file/, 'and says which');

# The environment overrides files; a bad environment value is named too.
my $file = conf('ok.conf', "workers = 2\n");
($rc, $out) = run({ MARKETS_WORKERS => 'many' }, '--config', $file, '--test-config');
is($rc, 1, 'a bad MARKETS_WORKERS stops the start');
like($out, qr/environment MARKETS_WORKERS: not a non-negative integer/, 'and is named');
($rc, $out) = run({ MARKETS_MAX_BODY => '2m', MARKETS_PORT => '9999' }, '--config', $file, '--test-config');
is($rc, 0, 'good overrides pass; variables that are no key (MARKETS_PORT) are ignored');

# Without --listen and without a socket on fd 0 there is nothing to serve.
($rc, $out) = run({}, '--config', $file, '</dev/null');
is($rc, 2, 'no --listen and no FastCGI socket: usage error');
like($out, qr/fd 0 is not a FastCGI listening socket/, 'says why');

# The environment really reaches the server: MARKETS_MAX_BODY shrinks the cap.
my $t = Markets::Test->new(services => [qw(app nginx)], env => { MARKETS_MAX_BODY => '1k' });
my $r = $t->request('POST', '/healthz', { headers => { 'Content-Type' => 'application/json' }, content => '"' . ('x' x 2000) . '"' });
$t->is_error($r, 413, 'payload_too_large', 'MARKETS_MAX_BODY=1k: the app answers 413');
$t->finish;
done_testing;
