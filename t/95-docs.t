#!/usr/bin/perl
# The documentation a user reads — README.md and docs/*.md — keeps its
# links inside the repository: every link is relative, names a file or
# folder that exists under the repository's root, and, with #anchor, a
# heading of that file (GitHub's anchors). No link has a scheme (http:,
# https:, mailto:) or climbs out of the root (../shared/API.md), and no
# bare URL in the prose becomes one (GitHub links those). Code blocks and
# code spans are text, not links: commands and example configurations may
# name any address. Every docs/*.md is reachable from the README.
use strict;
use warnings;
use utf8;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use FindBin;
use Test::More;
use lib "$FindBin::Bin/lib";
use Markets::Test;

Markets::Test::fronts_only([qw(nginx)], 'front-independent: it reads the Markdown files, no stack');

my $REPO = abs_path("$FindBin::Bin/..");

sub slurp_utf8 {
	my ($path) = @_;
	open(my $fh, '<:encoding(UTF-8)', $path) or die "$path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# The prose of a Markdown file: fenced code blocks dropped, code spans
# blanked, so that neither yields links nor headings.
sub prose_lines {
	my ($text) = @_;
	my ($fence, @lines);
	for my $line (split /\n/, $text) {
		if (defined $fence) {
			undef $fence if $line =~ /^\s*\Q$fence\E\s*$/;
			push @lines, '';
			next;
		}
		if ($line =~ /^\s*(```+|~~~+)/) {
			$fence = $1;
			push @lines, '';
			next;
		}
		$line =~ s/(`+)(?:(?!\1).)+?\1/ /g;
		push @lines, $line;
	}
	return @lines;
}

# GitHub's anchor for a heading: the rendered text lower-cased, every
# character but letters, digits, '_', '-' and spaces dropped, spaces made
# hyphens; a repeated anchor gets -1, -2, …
sub anchors {
	my ($path) = @_;
	my (%anchors, %seen);
	my ($fence);
	for my $line (split /\n/, slurp_utf8($path)) {
		if (defined $fence) {
			undef $fence if $line =~ /^\s*\Q$fence\E\s*$/;
			next;
		}
		if ($line =~ /^\s*(```+|~~~+)/) {
			$fence = $1;
			next;
		}
		next unless $line =~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
		my $text = $1;
		$text =~ s/!?\[([^\]]*)\]\([^)]*\)/$1/g;
		$text =~ s/[`*]//g;
		my $slug = lc $text;
		$slug =~ s/[^\w\- ]//g;
		$slug =~ s/ /-/g;
		my $n = $seen{$slug}++;
		$anchors{$n ? "$slug-$n" : $slug} = 1;
	}
	return \%anchors;
}

# Every link target of a file's prose: inline links and images
# [text](target "title"), reference definitions [id]: target, autolinks
# <scheme:…>, and bare URLs.
sub links {
	my ($path) = @_;
	my @found;
	my $n = 0;
	for my $line (prose_lines(slurp_utf8($path))) {
		$n++;
		while ($line =~ /\]\(\s*(<[^>]*>|[^)\s]*)/g) {
			(my $target = $1) =~ s/^<(.*)>$/$1/;
			push @found, [ $n, $target ];
		}
		push @found, [ $n, $1 ] if $line =~ /^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)/;
		push @found, [ $n, $1 ] while $line =~ /<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>/g;
		my $bare = $line;
		$bare =~ s/\]\([^)]*\)/]/g;
		$bare =~ s/<[^>]*>//g;
		push @found, [ $n, $1 ] while $bare =~ m{((?:https?|ftp)://\S+|www\.\S+)}g;
	}
	return @found;
}

opendir(my $dh, "$REPO/docs") or die "docs: $!";
my @docs = map { "docs/$_" } sort grep { /\.md$/ } readdir $dh;
closedir $dh;
ok(scalar @docs >= 1, scalar(@docs) . ' files in docs/*.md');

my %anchor_cache;
for my $file ('README.md', @docs) {
	my $dir = dirname("$REPO/$file");
	my (@outside, @broken);
	my @links = links("$REPO/$file");
	for my $link (@links) {
		my ($line, $target) = @$link;
		if ($target eq '' || $target =~ m{^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|www\.)}) {
			push @outside, "$file:$line: $target";
			next;
		}
		my ($rel, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
		my $dest = $rel eq '' ? "$REPO/$file" : File::Spec->rel2abs($rel, $dir);
		my $real = -e $dest ? abs_path($dest) : undef;
		if (!defined $real) {
			push @broken, "$file:$line: $target (no such file)";
			next;
		}
		if ($real ne $REPO && index($real, "$REPO/") != 0) {
			push @outside, "$file:$line: $target";
			next;
		}
		next unless defined $anchor;
		if ($real !~ /\.md$/) {
			push @broken, "$file:$line: $target (an anchor into a file that is not Markdown)";
			next;
		}
		$anchor_cache{$real} //= anchors($real);
		push @broken, "$file:$line: $target (no such heading)" unless $anchor_cache{$real}{$anchor};
	}
	is_deeply(\@outside, [], "$file: no link leaves the repository") or diag(join "\n", @outside);
	is_deeply(\@broken, [], "$file: " . scalar(@links) . ' links, every relative one resolves')
		or diag(join "\n", @broken);
}

# The README leads to every page of docs/, directly or through another.
my %reach = ('README.md' => 1);
my @queue = ('README.md');
while (my $file = shift @queue) {
	for my $link (links("$REPO/$file")) {
		my ($rel) = $link->[1] =~ /^([^#]*)/;
		next if $rel eq '' || $rel =~ /^[a-zA-Z][a-zA-Z0-9+.-]*:/;
		my $dest = File::Spec->rel2abs($rel, dirname("$REPO/$file"));
		next unless -f $dest && $dest =~ /\.md$/;
		my $name = File::Spec->abs2rel(abs_path($dest), $REPO);
		push @queue, $name unless $reach{$name}++;
	}
}
my @orphans = grep { !$reach{$_} } @docs;
is_deeply(\@orphans, [], 'every docs/*.md is reachable from README.md') or diag("@orphans");

done_testing;
