package Markets::Load;
# Steady load for the zero-downtime tests: a forked process keeps N
# kept-alive HTTP/1.1 connections to nginx busy, each sending its next
# request as soon as the last answer is in, and counts every answer by
# status and every failed exchange apart, by kind: a refused connection,
# a reset or closed one before the whole answer came, a write that
# failed, an answer that took longer than the timeout. Core Perl only.
#
#   my $load = Markets::Load->start(port => $t->port, connections => 32,
#       requests => [ { method => 'GET', path => '/healthz' }, ... ],
#       status_file => $t->root . '/load.status');
#   $load->answered;          # answers so far (read from the status file)
#   my $r = $load->stop;      # stops sending, waits for the answers due
#   # $r: { answers, ok (2xx), non_2xx, errors, statuses => { 200 => n },
#   #       error_kinds => { reset => n }, samples => [ first bad ones ],
#   #       max_ms (slowest answer) }
#
# The requests are taken in turn across all connections. A connection
# that nginx closes after an answer with "Connection: close" is opened
# again (no error); one closed any other way is an error.
use strict;
use warnings;
use Carp qw(croak);
use Errno qw(EAGAIN EWOULDBLOCK EINPROGRESS EINTR);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(time sleep);

sub start {
	my ($class, %opt) = @_;
	my $self = bless {
		port => $opt{port} // croak('port'),
		connections => $opt{connections} // 32,
		requests => $opt{requests} // [{ method => 'GET', path => '/healthz' }],
		status_file => $opt{status_file} // croak('status_file'),
		timeout => $opt{timeout} // 60,
	}, $class;
	unlink $self->{status_file};
	my $pid = fork // croak "fork: $!";
	if ($pid == 0) {
		my $code = eval { $self->_run; 0 } // do { print STDERR "load: $@"; 1 };
		POSIX::_exit($code);
	}
	$self->{pid} = $pid;
	return $self;
}

sub _status {
	my ($self) = @_;
	open my $fh, '<', $self->{status_file} or return undef;
	local $/;
	my $text = <$fh>;
	return eval { decode_json($text) };
}

# Answers so far (good or bad), as last written by the load process.
sub answered {
	my ($self) = @_;
	my $s = $self->_status;
	return $s ? $s->{answers} : 0;
}

# Stops sending; returns the totals once every answer due is in.
sub stop {
	my ($self) = @_;
	kill 'TERM', $self->{pid};
	waitpid($self->{pid}, 0);
	my $s = $self->_status or croak "load: no final status (exit $?)";
	croak 'load: the status is not final' unless $s->{final};
	return $s;
}

sub DESTROY {
	my ($self) = @_;
	return unless $self->{pid} && kill(0, $self->{pid});
	kill 'KILL', $self->{pid};
	waitpid($self->{pid}, 0);
}

# --- the load process ---

sub _run {
	my ($self) = @_;
	my $stopping = 0;
	local $SIG{TERM} = sub { $stopping = 1 };
	local $SIG{PIPE} = 'IGNORE';
	my %count = (answers => 0, ok => 0, non_2xx => 0, errors => 0, statuses => {}, error_kinds => {},
		samples => [], max_ms => 0);
	my @conns = map { { id => $_ } } 1 .. $self->{connections};
	my $next = 0;
	my $last_write = 0;

	my $error = sub {
		my ($c, $kind, $detail) = @_;
		$count{errors}++;
		$count{error_kinds}{$kind}++;
		push @{ $count{samples} }, "$kind: $detail" if @{ $count{samples} } < 10;
		close $c->{sock} if $c->{sock};
		delete @$c{qw(sock out in sent_at)};
	};
	my $send = sub {
		my ($c) = @_;
		if (!$c->{sock}) {
			$c->{sock} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp')
				or return $error->($c, 'connect', "$!");
			$c->{sock}->blocking(0);
			setsockopt($c->{sock}, IPPROTO_TCP, TCP_NODELAY, 1);
		}
		my $req = $self->{requests}[$next++ % @{ $self->{requests} }];
		my $body = $req->{body} // '';
		$c->{out} = "$req->{method} $req->{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			. join('', map { "$_: $req->{headers}{$_}\r\n" } sort keys %{ $req->{headers} || {} })
			. (length $body || $req->{method} ne 'GET' ? 'Content-Length: ' . length($body) . "\r\n" : '')
			. "\r\n$body";
		$c->{in} = '';
		$c->{sent_at} = time;
		$c->{what} = "$req->{method} $req->{path}";
	};
	# A whole answer at the start of $c->{in}: (status, close?) or ().
	my $parse = sub {
		my ($c) = @_;
		my $end = index($c->{in}, "\r\n\r\n");
		return () if $end < 0;
		my $head = substr($c->{in}, 0, $end);
		my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})} or return ('bad', 1);
		my $close = $head =~ /^Connection:\s*close/mi ? 1 : 0;
		my $pos = $end + 4;
		if ($head =~ /^Transfer-Encoding:\s*chunked/mi) {
			for (;;) {
				my $eol = index($c->{in}, "\r\n", $pos);
				return () if $eol < 0;
				my $size = hex substr($c->{in}, $pos, $eol - $pos);
				return () if length($c->{in}) < $eol + 2 + $size + 2;
				$pos = $eol + 2 + $size + 2;
				last if $size == 0;
			}
		} elsif ($head =~ /^Content-Length:\s*(\d+)/mi) {
			return () if length($c->{in}) < $pos + $1;
			$pos += $1;
		}
		$c->{body} = substr($c->{in}, $end + 4, $pos - $end - 4);
		return ($status, $close);
	};
	my $write_status = sub {
		my ($final) = @_;
		my $tmp = "$self->{status_file}.tmp";
		open my $fh, '>', $tmp or die "$tmp: $!";
		print $fh encode_json({ %count, final => $final ? JSON::PP::true : JSON::PP::false });
		close $fh or die "$tmp: $!";
		rename $tmp, $self->{status_file} or die "rename: $!";
		$last_write = time;
	};

	$send->($_) for @conns;
	$write_status->(0);
	for (;;) {
		my @busy = grep { $_->{sent_at} } @conns;
		last if $stopping && !@busy;
		my ($rin, $win) = ('', '');
		for my $c (@busy) {
			vec($rin, fileno $c->{sock}, 1) = 1;
			vec($win, fileno $c->{sock}, 1) = 1 if length $c->{out};
		}
		my $n = select(my $rout = $rin, my $wout = $win, undef, 0.05);
		my $now = time;
		for my $c (@busy) {
			my $fd = fileno $c->{sock};
			if ($n > 0 && length $c->{out} && vec($wout, $fd, 1)) {
				my $w = syswrite($c->{sock}, $c->{out});
				if (!defined $w) {
					$error->($c, 'write', "$c->{what}: $!") unless $! == EAGAIN || $! == EINTR;
				} else {
					substr($c->{out}, 0, $w) = '';
				}
			}
			next unless $c->{sent_at};
			if ($n > 0 && vec($rout, $fd, 1)) {
				my $r = sysread($c->{sock}, $c->{in}, 65536, length $c->{in});
				if (!defined $r) {
					$error->($c, 'reset', "$c->{what}: $!") unless $! == EAGAIN || $! == EINTR;
					next;
				}
				if ($r == 0) {
					$error->($c, 'closed', "$c->{what}: the connection closed after "
						. length($c->{in}) . ' bytes of answer');
					next;
				}
			}
			my ($status, $close) = $parse->($c);
			if (!defined $status) {
				$error->($c, 'timeout', "$c->{what}: no answer in $self->{timeout}s")
					if $now - $c->{sent_at} > $self->{timeout};
				next;
			}
			my $ms = ($now - $c->{sent_at}) * 1000;
			$count{max_ms} = $ms if $ms > $count{max_ms};
			$count{answers}++;
			$count{statuses}{$status}++;
			if ($status =~ /^2/) {
				$count{ok}++;
			} else {
				$count{non_2xx}++;
				push @{ $count{samples} }, "$status: $c->{what}: " . substr($c->{body} // '', 0, 200)
					if @{ $count{samples} } < 10;
			}
			delete $c->{sent_at};
			if ($close) { close $c->{sock}; delete $c->{sock} }
		}
		if (!$stopping) {
			$send->($_) for grep { !$_->{sent_at} } @conns;
		}
		$write_status->(0) if time - $last_write > 0.1;
	}
	close $_->{sock} for grep { $_->{sock} } @conns;
	$write_status->(1);
}

1;
