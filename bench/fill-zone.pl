#!/usr/bin/perl
# Fills a pred_cache zone through the batch miss path: POSTs keys
# user_0000000 .. user_N-1, CHUNK at a time, to URL (a pred_batch location
# whose model answers every key); fails on any answer but 200 or any key
# not answered by the model:  fill-zone.pl URL N [CHUNK]
#
# One keepalive connection with TCP_NODELAY, each request written whole:
# HTTP::Tiny writes a POST's headers and body apart, and Nagle's algorithm
# with the server's delayed ACK then stalls each request for 40 ms.
use strict;
use warnings;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

my ($url, $n, $chunk) = @ARGV;
die "usage: fill-zone.pl URL N [CHUNK]\n" unless $url && $n;
$chunk ||= 1000;
my ($host, $port, $path) = $url =~ m{^http://([^:/]+):(\d+)(/.*)$}
    or die "fill-zone: $url: not http://HOST:PORT/PATH\n";

my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port)
    or die "fill-zone: $url: $!\n";
setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);

for (my $k = 0; $k < $n; $k += $chunk) {
    my $last = $k + $chunk > $n ? $n : $k + $chunk;
    my $body = '{"keys":['
        . join(',', map { sprintf '"user_%07d"', $_ } $k .. $last - 1)
        . ']}';
    print $sock "POST $path HTTP/1.1\r\nHost: $host\r\n"
        . "Content-Type: application/json\r\n"
        . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;

    local $/ = "\r\n\r\n";
    my $head = <$sock> // die "fill-zone: $url: connection closed\n";
    my ($status) = $head =~ m{^HTTP/1\.\d (\d+)};
    my ($len) = $head =~ /^Content-Length: *(\d+)/mi;
    die "fill-zone: $url: no Content-Length in $head\n" unless defined $len;
    my $got = '';
    while (length $got < $len) {
        read($sock, $got, $len - length $got, length $got)
            or die "fill-zone: $url: connection closed\n";
    }
    die "fill-zone: $url: $status: $got\n" unless $status == 200;
    my $up = () = $got =~ /"user_\d+":"upstream"/g;
    die "fill-zone: $up of " . ($last - $k) . " keys from the model\n"
        unless $up == $last - $k;
}
