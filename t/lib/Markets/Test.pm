package Markets::Test;
# The integration-test harness: each test file starts its own stack
# (MariaDB, memcached, the app, nginx — or the subset it asks for) on
# private sockets under a temp dir with scripts/stack, the same script
# `scripts/dev up` uses, and talks HTTP to its front like a real client.
#
# The front (scripts/stack --front) is MARKETS_TEST_FRONT's: nginx (the
# default), apache (mod_fcgid), apache-proxy (mod_proxy_fcgi) or
# shared-hosting (the owner's files under the host's Apache, served at
# /~USER/markets). request() and get() put the base path before a path
# that starts with "/", so a test says '/api/markets' under every front;
# $t->path('/api/markets/1') is the full path, for Location and Link.
#   Markets::Test::fronts_only(['nginx'], 'why, in one line');
# skips a test file that does not apply to the other fronts.
#
#   my $t = Markets::Test->new(env => { MARKETS_WORKERS => 2 });
#   my $r = $t->get('/healthz');   # { status, headers, content, json }
#   Markets::Test->new(topology => 'replicated');  # primary + replica,
#                                  # two memcached, two apps (docs/scaling.md)
#   ...
#   $t->finish;                    # stops the stack, asserts no sanitizer report
#   done_testing;
#
# Core Perl modules only (HTTP::Tiny, JSON::PP).
use strict;
use warnings;
use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Scalar::Util ();
use Test::More;
use Time::HiRes qw(sleep time);

our $REPO = abs_path(dirname(__FILE__) . '/../../..');

# A peer closing a socket must fail a test, not kill the test process.
$SIG{PIPE} = 'IGNORE';

# Stacks still running when the test program ends (a die, a BAIL_OUT) are
# stopped here. This END block is compiled after File::Temp's, so it runs
# before File::Temp removes the directories that hold the pid files.
# Only the process that started a stack stops it: a forked client that
# exits normally must not take the stack down with it.
my %live;
END {
	local $?;
	$_->cleanup for grep { defined && $_->{owner} == $$ } values %live;
}

# The front the tests run through (t/fronts sets it per run). Read once
# and taken out of the environment: the harness's variables are no
# settings of the app's, and a binary a test runs itself (t/07-config.t)
# would warn about them as misspelt MARKETS_* keys.
our $FRONT = delete $ENV{MARKETS_TEST_FRONT};
delete $ENV{MARKETS_TEST_FRONTS};
sub test_front { $FRONT || 'nginx' }
our %MOD_FCGID = (apache => 1, 'shared-hosting' => 1);

# fronts_only([FRONT...], WHY) — skips the whole test file under any
# other front, saying why in one line.
sub fronts_only {
	my ($fronts, $why) = @_;
	my $front = test_front();
	return if grep { $_ eq $front } @$fronts;
	plan skip_all => "not under the $front front: $why";
}

sub repo { $REPO }
sub build_dir { $ENV{MARKETS_BUILD_DIR} || "$REPO/var/build" }

# A TCP port nobody listens on right now (nginx binds it a moment later).
sub free_port {
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1, ReuseAddr => 1)
		or croak "no free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

sub new {
	my ($class, %opt) = @_;
	my %env = (MARKETS_WORKERS => 2, %{ $opt{env} || {} });
	# undef deletes a default (e.g. to set workers from a file instead).
	delete @env{ grep { !defined $env{$_} } keys %env };
	my $self = bless {
		owner => $$,
		front => $opt{front} || test_front(),
		base_path => '',
		topology => $opt{topology} || 'single',
		apps => $opt{apps} || (($opt{topology} // '') eq 'replicated' ? 2 : 1),
		seed => $opt{seed} ? 1 : 0,
		services => $opt{services} || [qw(mariadb memcached app nginx)],
		env => \%env,
		root => tempdir('markets-t-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{MARKETS_KEEP_TMP}),
	}, $class;
	$self->{port} = free_port();
	mkdir "$self->{root}/conf";
	$self->write_local_conf($opt{local_conf}) if defined $opt{local_conf};
	$self->{http} = HTTP::Tiny->new(timeout => 30, keep_alive => 1, max_redirect => 0);
	$self->start;
	return $self;
}

sub root { $_[0]{root} }
sub front { $_[0]{front} }
# The prefix the app is served under: '' or e.g. '/~mk40123/markets'.
sub base_path { $_[0]{base_path} }
# The full path of an app path, as Location and Link headers give it.
sub path { my ($self, $p) = @_; return $self->{base_path} . $p }
# True under the fronts where Apache starts the app (no master).
sub mod_fcgid { $MOD_FCGID{ $_[0]{front} } }
# The pid file names (under run/) of the front server, and of what runs
# the app's side: the master, or under mod_fcgid the cron stand-in.
sub front_pid_name { $_[0]{front} eq 'nginx' ? 'nginx' : 'apache' }
sub app_pid_name { $_[0]->mod_fcgid ? 'cron' : 'markets' }
sub port { $_[0]{port} }
sub base_url { 'http://127.0.0.1:' . $_[0]{port} }
sub app_socket { $_[0]{root} . '/run/markets.sock' }
sub app_log { $_[0]{root} . '/log/markets.log' }

# The environment the stack's processes get: config overrides, and sanitizer
# reports written to files that finish() inspects.
sub _stack_env {
	my ($self) = @_;
	my %env = %{ $self->{env} };
	my $log = "$self->{root}/log/sanitizer";
	$env{ASAN_OPTIONS} = join ':', grep { length } ($ENV{ASAN_OPTIONS} // ''), "log_path=$log";
	$env{UBSAN_OPTIONS} = join ':', grep { length } ($ENV{UBSAN_OPTIONS} // ''), "log_path=$log";
	return %env;
}

sub stack {
	my ($self, @args) = @_;
	local %ENV = (%ENV, $self->_stack_env);
	my $rc = system("$REPO/scripts/stack", @args);
	return $rc == 0;
}

sub start {
	my ($self, @services) = @_;
	@services = @{ $self->{services} } unless @services;
	$live{"$self"} = $self;
	Scalar::Util::weaken($live{"$self"});
	$self->{stopped} = 0;
	$self->stack('start', $self->{root}, '--port', $self->{port}, '--front', $self->{front},
		'--services', "@services", '--apps', $self->{apps}, '--topology', $self->{topology},
		$self->{seed} ? ('--seed') : ())
		or BAIL_OUT("the stack did not start (logs kept in $self->{root}/log)");
	# What `scripts/stack front ROOT` prints, read here rather than with
	# another process between the start and the test's first step.
	my $owner = slurp("$self->{root}/owner");
	chomp $owner;
	$self->{base_path} = $self->{front} eq 'shared-hosting' ? "/~$owner/markets" : '';
}

sub stop {
	my ($self) = @_;
	return if $self->{stopped}++;
	delete $live{"$self"} if $self->{cleaned} || !$MOD_FCGID{ $self->{front} };
	$self->stack('stop', $self->{root});
}

# The final stop: also removes what the stack created outside its root
# (the shared-hosting stack's own unix account).
sub cleanup {
	my ($self) = @_;
	$self->stop;
	return if $self->{cleaned}++;
	$self->stack('cleanup', $self->{root});
}

# Stops the stack and asserts what a clean run leaves behind: no sanitizer
# report and no worker that crashed (SIGKILLs sent by the test itself aside).
sub finish {
	my ($self, %opt) = @_;
	$self->cleanup;
	my @reports = glob("$self->{root}/log/sanitizer.*");
	ok(!@reports, 'no ASan/UBSan report') or diag(map { "--- $_\n" . slurp($_) } @reports);
	my @crashes = grep { /died by signal (\d+)/ && $1 != 9 } $self->log_text_lines;
	ok(!@crashes, 'no worker crashed') or diag(@crashes);
	if ($ENV{MARKETS_KEEP_TMP}) { diag("stack kept in $self->{root}") }
}

sub DESTROY {
	my ($self) = @_;
	local $?;
	$self->cleanup unless $self->{cleaned} || $self->{owner} != $$;
}

sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return '';
	local $/;
	return scalar <$fh>;
}

sub pid_of {
	my ($self, $name) = @_;
	my $pid = slurp("$self->{root}/run/$name.pid");
	chomp $pid;
	return $pid;
}

# The master of app instance n (1 by default; see scripts/stack --apps).
sub master_pid {
	my ($self, $n) = @_;
	$self->_needs_master('master_pid');
	return $self->pid_of(!$n || $n == 1 ? 'markets' : "markets-$n");
}

sub _needs_master {
	my ($self, $what) = @_;
	croak "$what: no master under the $self->{front} front (Apache starts the app; "
		. "Markets::Test::fronts_only says which fronts a test applies to)" if $self->mod_fcgid;
}

# The stack's HS256 secret (scripts/stack generates it into jwt_secret.conf;
# MARKETS_JWT_SECRET in the test's env wins, as it does for the app).
sub secret {
	my ($self) = @_;
	return $self->{env}{MARKETS_JWT_SECRET} if defined $self->{env}{MARKETS_JWT_SECRET};
	my ($secret) = slurp("$self->{root}/jwt_secret.conf") =~ /^jwt_secret = (\S+)$/m
		or croak 'no jwt_secret.conf (start the app first)';
	return $secret;
}

# A compact JWS: header and payload as JSON text (or hashes), signed HS256
# with the stack's secret unless a signature (raw bytes) or key is given.
sub jws {
	my ($self, %a) = @_;
	my $enc = sub { my $v = shift; ref $v ? JSON::PP->new->canonical->encode($v) : $v };
	my $signing = encode_base64url($enc->($a{header} // { alg => 'HS256', typ => 'JWT' }))
		. '.' . encode_base64url($enc->($a{payload}));
	my $sig = exists $a{signature} ? $a{signature} : hmac_sha256($signing, $a{key} // $self->secret);
	return "$signing." . encode_base64url($sig);
}

# A valid HS256 token for sub/role (defaults: sub 1, role user, 1 h).
sub token {
	my ($self, %claims) = @_;
	my $now = time;
	return $self->jws(payload => { sub => '1', role => 'user', iat => int($now), exp => int($now) + 3600, %claims });
}

sub bearer { my ($self, @claims) = @_; return { Authorization => 'Bearer ' . $self->token(@claims) } }

# The master's live children, sorted.
# The master's children: its FastCGI workers, or (runners => 1) its job
# runners, told apart by the name runners give themselves.
sub children_of_master {
	my ($self, $runners) = @_;
	my $master = $self->master_pid;
	my @pids;
	for my $stat (glob '/proc/[0-9]*/stat') {
		my $line = slurp($stat) or next;
		# pid (comm) state ppid ... ; comm may hold spaces, so split after ')'.
		my ($pid, $comm, $rest) = $line =~ /^(\d+) \((.*)\) (.*)$/s or next;
		my ($state, $ppid) = split ' ', $rest;
		next unless $ppid == $master && $state ne 'Z';
		push @pids, $pid if ($comm eq 'markets-runner') == !!$runners;
	}
	my @sorted = sort { $a <=> $b } @pids;
	return @sorted; # in scalar context: how many
}
sub worker_pids { my ($self) = @_; return $self->children_of_master(0) }
sub runner_pids { my ($self) = @_; return $self->children_of_master(1) }

# Polls cond every 50 ms for up to secs seconds; returns its last value.
sub wait_until {
	my ($self, $secs, $cond) = @_;
	my $deadline = time + $secs;
	my $v;
	while (!($v = $cond->()) && time < $deadline) { sleep 0.05 }
	return $v;
}

sub log_text_lines {
	my ($self) = @_;
	return split /\n/, slurp($self->app_log);
}

# The app's log lines as decoded JSON objects (lines that do not parse fail a test).
sub log_lines {
	my ($self) = @_;
	my @out;
	for my $line ($self->log_text_lines) {
		my $obj = eval { decode_json($line) };
		if (!$obj) { fail("log line is JSON: $line"); next }
		push @out, $obj;
	}
	return @out;
}

# The access line for a request id (waits briefly: workers write it after answering).
sub access_line {
	my ($self, $request_id) = @_;
	my $found;
	$self->wait_until(5, sub {
		($found) = grep { ($_->{request_id} // '') eq $request_id } $self->log_lines;
		$found;
	});
	return $found;
}

# request(METHOD, PATH, { headers => {...}, content => '...' }) through
# the front; PATH starting with "/" gets the base path before it.
sub request {
	my ($self, $method, $path, $opt) = @_;
	$path = $self->{base_path} . $path if $path =~ m{^/};
	my $res = $self->{http}->request($method, $self->base_url . $path, $opt || {});
	my %r = (status => $res->{status}, headers => $res->{headers}, content => $res->{content} // '');
	$r{json} = eval { JSON::PP->new->utf8->decode($r{content}) } if length $r{content};
	return \%r;
}

sub get { my ($self, $path, $opt) = @_; $self->request('GET', $path, $opt) }

sub header {
	my ($r, $name) = @_;
	my $v = $r->{headers}{lc $name};
	return ref $v ? $v->[0] : $v;
}

# Asserts the contract's error envelope: status, code, a message, and a
# request_id equal to the X-Request-Id header.
sub is_error {
	my ($self, $r, $status, $code, $name) = @_;
	my $ok = 1;
	$ok &&= is($r->{status}, $status, "$name: status $status");
	my $j = $r->{json};
	$ok &&= ok($j && ref $j eq 'HASH', "$name: body is a JSON object") or diag($r->{content});
	return 0 unless $j && ref $j eq 'HASH';
	$ok &&= is($j->{success}, JSON::PP::false, "$name: success false");
	$ok &&= is($j->{code}, $code, "$name: code $code");
	$ok &&= ok(defined $j->{error} && length $j->{error}, "$name: has a message");
	my $rid = header($r, 'X-Request-Id');
	$ok &&= ok(defined $rid && length $rid, "$name: X-Request-Id header");
	$ok &&= is($j->{request_id}, $rid, "$name: request_id matches the header");
	like(header($r, 'Content-Type') // '', qr{^application/json; charset=utf-8$}, "$name: JSON content type");
	return $ok;
}

# Runs SQL through the stack's MariaDB as root; returns rows of tab-split columns.
sub sql { my ($self, $query) = @_; $self->sql_at('mysql', $query) }

# The same on the MariaDB whose socket is run/NAME.sock ('mysql-replica').
sub sql_at {
	my ($self, $name, $query) = @_;
	open my $fh, '-|', 'mariadb', '--no-defaults', "--socket=$self->{root}/run/$name.sock",
		'-uroot', '-N', '-B', 'markets', '-e', $query or croak "mariadb: $!";
	my @rows = map { chomp; [split /\t/] } <$fh>;
	close $fh or croak "mariadb failed on: $query";
	return @rows;
}

# Holds market $id's row lock (SELECT ... FOR UPDATE) in a MariaDB session of
# its own for $secs seconds; returns once it is held. Closing the returned
# handle waits for the session to end.
sub hold_row_lock {
	my ($self, $id, $secs) = @_;
	open my $locker, '|-', 'mariadb', '--no-defaults', "--socket=$self->{root}/run/mysql.sock", '-uroot', 'markets'
		or croak "mariadb: $!";
	$locker->autoflush(1);
	print $locker "BEGIN; SELECT id FROM markets WHERE id = $id FOR UPDATE; SELECT SLEEP($secs); COMMIT;\n";
	# Held once its SLEEP runs.
	$self->wait_until(5, sub {
		($self->sql(q{SELECT COUNT(*) FROM information_schema.processlist WHERE INFO LIKE 'SELECT SLEEP(%'}))[0][0] >= 1 })
		or croak 'the row lock was not taken';
	return $locker;
}

# Writes conf/markets.local.conf, the config file the app reads last, for
# the next start or SIGHUP.
sub write_local_conf {
	my ($self, $text) = @_;
	my $path = "$self->{root}/conf/markets.local.conf";
	open my $fh, '>', $path or croak "$path: $!";
	print $fh $text;
	close $fh or croak "$path: $!";
}

1;
