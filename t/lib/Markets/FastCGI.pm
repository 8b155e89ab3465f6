package Markets::FastCGI;
# A tiny FastCGI client for tests that must speak to the app's socket
# directly: what nginx never sends (lying lengths, bad versions, records
# split anywhere) and what must happen mid-request (draining on SIGTERM).
use strict;
use warnings;
use Carp qw(croak);
use IO::Socket::INET;
use IO::Socket::UNIX;
use IO::Select;
use Socket qw(SOCK_STREAM);

# STDIN, STDOUT and STDERR are Perl's own names, hence the FCGI_ prefix on those.
use constant {
	BEGIN_REQUEST => 1, ABORT_REQUEST => 2, END_REQUEST => 3, PARAMS => 4,
	FCGI_STDIN => 5, FCGI_STDOUT => 6, FCGI_STDERR => 7, GET_VALUES => 9, GET_VALUES_RESULT => 10,
	UNKNOWN_TYPE => 11, RESPONDER => 1, AUTHORIZER => 2, KEEP_CONN => 1,
};

sub connect {
	my ($class, $path) = @_;
	my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
		or croak "connect $path: $!";
	$sock->autoflush(1);
	return bless { sock => $sock, buf => '' }, $class;
}

# The same over TCP, to host:port (tests only ever connect to loopback).
sub connect_tcp {
	my ($class, $host, $port) = @_;
	my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp', Timeout => 10)
		or croak "connect $host:$port: $!";
	$sock->autoflush(1);
	return bless { sock => $sock, buf => '' }, $class;
}

sub record {
	my ($type, $id, $content, %opt) = @_;
	$content //= '';
	my $pad = exists $opt{padding} ? $opt{padding} : (8 - length($content) % 8) % 8;
	return pack('CCnnCC', $opt{version} // 1, $type, $id, length $content, $pad, 0) . $content . ("\0" x $pad);
}

sub pair {
	my ($name, $value) = @_;
	my $len = sub { my $n = shift; $n < 128 ? pack('C', $n) : pack('N', $n | 0x80000000) };
	return $len->(length $name) . $len->(length $value) . $name . $value;
}

sub params_records {
	my ($id, %params) = @_;
	my $body = join '', map { pair($_, $params{$_}) } sort keys %params;
	my $out = '';
	while (length $body) { $out .= record(PARAMS, $id, substr($body, 0, 65535, '')) }
	return $out . record(PARAMS, $id, '');
}

sub stdin_records {
	my ($id, $body) = @_;
	my $out = '';
	while (length $body) { $out .= record(FCGI_STDIN, $id, substr($body, 0, 65535, '')) }
	return $out . record(FCGI_STDIN, $id, '');
}

# The bytes of a whole responder request.
sub request_bytes {
	my (%a) = @_;
	my $id = $a{id} // 1;
	my %params = (REQUEST_METHOD => 'GET', REQUEST_URI => '/healthz', SERVER_PROTOCOL => 'HTTP/1.1',
		REMOTE_ADDR => '127.0.0.1', %{ $a{params} || {} });
	return record(BEGIN_REQUEST, $id, pack('nCx5', $a{role} // RESPONDER, $a{keep} ? KEEP_CONN : 0))
		. params_records($id, %params) . stdin_records($id, $a{body} // '');
}

sub send_bytes {
	my ($self, $bytes) = @_;
	my $n = syswrite($self->{sock}, $bytes);
	croak "write: $!" unless defined $n && $n == length $bytes;
}

# Reads records until END_REQUEST for id, or EOF, or timeout. Returns
# { stdout, end => protocol status or undef, eof, records => [[type, id, content]] }.
sub read_response {
	my ($self, %a) = @_;
	my $deadline = time + ($a{timeout} // 10);
	my %r = (stdout => '', records => []);
	my $sel = IO::Select->new($self->{sock});
	while (1) {
		while (length $self->{buf} >= 8) {
			my ($ver, $type, $id, $len, $pad) = unpack('CCnnC', $self->{buf});
			last if length $self->{buf} < 8 + $len + $pad;
			my $content = substr($self->{buf}, 8, $len);
			substr($self->{buf}, 0, 8 + $len + $pad, '');
			push @{ $r{records} }, [$type, $id, $content];
			$r{stdout} .= $content if $type == FCGI_STDOUT;
			if ($type == END_REQUEST && (!defined $a{id} || $id == $a{id})) {
				$r{end} = unpack('x4C', $content);
				return \%r;
			}
			return \%r if $a{until_type} && $type == $a{until_type};
		}
		my $left = $deadline - time;
		return \%r if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($self->{sock}, my $chunk, 65536);
		if (!$n) { $r{eof} = 1; return \%r }
		$self->{buf} .= $chunk;
	}
}

# Splits the CGI text of a response into status, headers and body.
sub parse_cgi {
	my ($text) = @_;
	my ($head, $body) = split /\r\n\r\n/, $text, 2;
	my %h;
	for (split /\r\n/, $head // '') { my ($k, $v) = split /: /, $_, 2; $h{lc $k} = $v }
	my ($status) = ($h{status} // '') =~ /^(\d+)/;
	return { status => $status, headers => \%h, body => $body // '' };
}

# One whole request on a new connection; returns parse_cgi's result plus end/eof.
sub simple {
	my ($class, $path, %a) = @_;
	my $c = $class->connect($path);
	$c->send_bytes(request_bytes(%a));
	my $r = $c->read_response(id => $a{id} // 1, timeout => $a{timeout});
	my $p = parse_cgi($r->{stdout});
	return { %$p, end => $r->{end}, eof => $r->{eof} };
}

sub close { close $_[0]{sock} }

1;
