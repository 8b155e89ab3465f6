package Markets::Notify;
# The service manager's side of sd_notify(3) for the tests: a datagram
# socket at a path (what NOTIFY_SOCKET names), read without blocking.
# Every message heard so far is kept, as a hash of its KEY=VALUE lines.
#
#   my $n = Markets::Notify->new("$dir/notify.sock");
#   $ENV{NOTIFY_SOCKET} = $n->path;   # for the process under test
#   $n->heard(READY => 1);            # the messages with READY=1
#   $n->ready_from($pid);             # READY=1 with MAINPID=$pid
use strict;
use warnings;
use Carp qw(croak);
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);

sub new {
	my ($class, $path) = @_;
	my $socket = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $path) or croak "notify socket $path: $!";
	$socket->blocking(0);
	return bless { path => $path, socket => $socket, heard => [] }, $class;
}

sub path { $_[0]{path} }

# Every message so far, oldest first.
sub hear {
	my ($self) = @_;
	while (defined $self->{socket}->recv(my $msg, 4096)) {
		last unless length $msg;
		push @{ $self->{heard} }, { map { split /=/, $_, 2 } split /\n/, $msg };
	}
	return @{ $self->{heard} };
}

# The messages with KEY=VALUE.
sub heard {
	my ($self, $key, $value) = @_;
	return grep { ($_->{$key} // '') eq $value } $self->hear;
}

# The messages that say READY=1 for the main process $pid.
sub ready_from {
	my ($self, $pid) = @_;
	return grep { ($_->{READY} // '') eq '1' && ($_->{MAINPID} // '') eq $pid } $self->hear;
}

1;
