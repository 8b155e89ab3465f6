#!/usr/bin/perl
# The libFuzzer targets (t/fuzz/fuzz_*.c) still build, pass over their seed
# corpus, and survive a short fuzzing run. Long runs: `scripts/dev fuzz`.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use File::Temp qw(tempdir);
use Test::More;
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], 'front-independent: it runs the libFuzzer targets, no stack');

my $dir = $ENV{MARKETS_FUZZ_DIR};
plan skip_all => 'fuzz targets are built by scripts/dev test (MARKETS_FUZZ_DIR)' unless $dir && -d $dir;
my $repo = Markets::Test::repo();
my @sources = glob "$repo/t/fuzz/fuzz_*.c";
ok(@sources >= 3, 'there are fuzz targets');
my $secs = $ENV{MARKETS_FUZZ_SECONDS} || 5;

for my $src (@sources) {
	my ($name) = $src =~ m{/(fuzz_\w+)\.c$};
	my $bin = "$dir/$name";
	ok(-x $bin, "$name is built") or next;
	my $work = tempdir(CLEANUP => 1);
	my $seeds = "$repo/t/fuzz/corpus/$name";
	my @seed_files = glob "$seeds/*";
	ok(@seed_files > 0, "$name has a seed corpus");
	my $out = `'$bin' -runs=0 '$seeds' 2>&1`;
	is($? >> 8, 0, "$name passes over its seeds") or diag($out);
	$out = `'$bin' -max_total_time=$secs -artifact_prefix='$work/' '$work' '$seeds' 2>&1`;
	is($? >> 8, 0, "$name survives ${secs}s of fuzzing") or diag(join "\n", (split /\n/, $out)[-40 .. -1]);
	my @crashes = glob "$work/crash-* $work/leak-* $work/timeout-*";
	ok(!@crashes, "$name left no crash artifact") or diag("@crashes");
}
done_testing;
