#!/usr/bin/perl
# Verifies the DKIM signatures of the message on stdin with Mail::DKIM (an
# implementation independent of ours), looking keys up at the DNS server
# on 127.0.0.1:$ARGV[0]. Prints one line per signature:
#   RESULT DOMAIN SELECTOR ALGORITHM DETAIL
use strict;
use warnings;
use Net::DNS::Resolver;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;

my $port = shift or die "usage: verify.pl DNS-PORT < message\n";
my $res = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port,
	recurse => 1, tcp_timeout => 5, udp_timeout => 5, retry => 1);
Mail::DKIM::DNS::resolver($res);

my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (<STDIN>) {
	# Mail::DKIM wants CRLF line ends; the message already has them.
	$dkim->PRINT($_);
}
$dkim->CLOSE;
for my $sig ($dkim->signatures) {
	printf "%s %s %s %s %s\n", $sig->result, $sig->domain, $sig->selector,
		$sig->algorithm, ($sig->result_detail // '');
}
printf "overall %s\n", $dkim->result;
