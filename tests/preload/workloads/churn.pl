# A Perl workload for the preload tests: hashes, arrays, string building, regexes and sorting,
# with a deterministic digest of the results.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my $seed = 12345;
sub next_rand { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }

my %table;
my $ctx = Digest::MD5->new;
for my $round (1 .. 30) {
    for my $i (1 .. 6000) {
        my $key = "key" . (next_rand() % 30000);
        $table{$key} = join(",", map { next_rand() % 1000 } 1 .. (next_rand() % 20));
    }
    delete $table{$_} for grep { /7$/ } keys %table;
    my @keys = sort keys %table;
    my $joined = join(";", map { "$_=$table{$_}" } @keys[0 .. 499]);
    (my $squeezed = $joined) =~ s/(\d+),(\d+)/$2-$1/g;
    $ctx->add($squeezed);
    my @words = split /[,;=]/, $joined;
    $ctx->add(scalar(@words));
}
my @big = map { [ (1) x ($_ % 300) ] } 1 .. 5000;
my $total = 0;
$total += scalar(@$_) for @big;
print scalar(keys %table), " $total ", $ctx->hexdigest, "\n";
