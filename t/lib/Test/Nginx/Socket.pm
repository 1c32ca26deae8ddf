package Test::Nginx::Socket;

# The project's own runner for the subset of Test::Nginx::Socket's block
# format that our t/*.t files use.  It is only put on @INC (prove -I t/lib)
# when the real Test::Nginx from CPAN is not installed; the files run
# unchanged under either.  Defaults follow the real one: generated nginx.conf
# shape, master_process off, daemon on, port 1984, servroot t/servroot,
# error_log at debug, blocks shuffled unless no_shuffle().
#
# TEST_NGINX_USE_VALGRIND=1 runs nginx in the foreground under memcheck, as
# the real runner does (a value that is not a number is the valgrind options
# to use); valgrind's report goes to logs/valgrind.PID and every block gets
# one more assertion: no memcheck error and no definite leak through our code.
#
# Stricter than the real one on purpose: unknown and duplicate sections fail
# the block, and after every block nginx is stopped and its whole error log
# is checked for [alert] and [emerg] lines the block did not expect.

use strict;
use warnings;

use Test::Base ();
use Test::More ();
use Cwd qw(cwd);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(shuffle);
use POSIX qw(:sys_wait_h SIGQUIT SIGKILL SIGTERM);
use Time::HiRes qw(sleep time);

our @ISA = ('Test::Base');

our @EXPORT = (qw(
    run_tests repeat_each workers master_on master_off
    master_process_enabled no_shuffle log_level timeout
    worker_connections no_root_location env_to_nginx config_preamble
    server_port server_port_for_client server_root html_dir
    no_long_string bail_out add_block_preprocessor
));

our $ServerAddr = '127.0.0.1';
our $ServerName = 'localhost';
our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                  || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NginxBinary = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $LoadModules = $ENV{TEST_NGINX_LOAD_MODULES};
our $LogLevel = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcess = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Timeout = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $NoShuffle = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Sleep = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $UseValgrind = $ENV{TEST_NGINX_USE_VALGRIND};
our $Workers = 1;
our $WorkerConnections = 64;
our $RepeatEach = 1;
our $NoRootLocation = 0;
our $ConfigPreamble = '';
our @EnvToNginx;
our @BlockPreprocessors;

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
                || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir = "$ServRoot/html";
our $ConfDir = "$ServRoot/conf";
our $ConfFile = "$ConfDir/nginx.conf";
our $PidFile = "$LogDir/nginx.pid";

my $ErrLogPos = 0;

# every section this runner implements; anything else fails the block
my %Known = map { $_ => 1 } qw(
    main_config http_config config request request_eval more_headers
    response_body response_body_like error_code response_headers
    response_headers_like error_log no_error_log timeout user_files wait
    must_die log_level ONLY SKIP LAST
);

sub repeat_each { $RepeatEach = shift if @_; return $RepeatEach }
sub workers { $Workers = shift if @_; return $Workers }
sub master_on () { $MasterProcess = 'on' }
sub master_off () { $MasterProcess = 'off' }
sub master_process_enabled {
    $MasterProcess = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcess;
}
sub no_shuffle () { $NoShuffle = 1 }
sub log_level { $LogLevel = shift if @_; return $LogLevel }
sub timeout { $Timeout = shift if @_; return $Timeout }
sub worker_connections {
    $WorkerConnections = shift if @_;
    return $WorkerConnections;
}
sub no_root_location () { $NoRootLocation = 1 }
sub env_to_nginx { push @EnvToNginx, @_ }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub config_preamble { $ConfigPreamble = shift }
sub server_port { $ServerPort = shift if @_; return $ServerPort }
sub server_port_for_client {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}
sub server_root () { $ServRoot }
sub html_dir () { $HtmlDir }
sub no_long_string () { }

sub bail_out {
    stop_nginx();
    Test::More::BAIL_OUT(join '', @_);
}

sub run_tests () {
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        run_block($block);
    }

    stop_nginx();
}

sub parse_time {
    my $t = shift;
    return undef unless defined $t;
    return $1 / 1000 if $t =~ /^\s*([\d.]+)\s*ms\s*$/;
    return $1 if $t =~ /^\s*([\d.]+)\s*s?\s*$/;
    return $t;
}

sub check_sections {
    my ($block, $name) = @_;
    my (%seen, @bad);

    for my $s (@{ $block->{_section_order}[0] || [] }) {
        push @bad, "unknown section \"--- $s\"" unless $Known{$s};
        push @bad, "duplicate section \"--- $s\"" if $seen{$s}++;
    }

    # the real runner checks response_headers_like only without
    # response_headers: a block with both would lose an assertion there
    push @bad, "response_headers_like is ignored when response_headers is "
               . "present (real Test::Nginx): use one of them"
        if $seen{response_headers} && $seen{response_headers_like};

    for my $b (@bad) {
        Test::More::fail("$name - $b");
    }

    return !@bad;
}

sub gen_rand_port {
    my $used = shift;

    for (1 .. 1000) {
        my $port = int(rand 63550) + 1985;
        next if $used->{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => $ServerAddr,
                                         LocalPort => $port, Proto => 'tcp',
                                         ReuseAddr => 0);
        next unless $sock;
        close $sock;
        $used->{$port} = 1;
        return $port;
    }

    bail_out("cannot find a free port");
}

sub expand_env {
    my ($text, $name, $ports) = @_;
    return undef unless defined $text;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            if (!defined $ports->{$var}) {
                my $port = gen_rand_port({
                    $ServerPort => 1, map { $_ => 1 } values %$ports });
                $ports->{$var} = $port;
            }
            $ports->{$var};
        } else {
            defined $ENV{$var}
                or bail_out("$name - No environment $var defined.");
            $ENV{$var};
        }
    }ge;

    return $text;
}

sub setup_server_root {
    remove_tree($ConfDir, $HtmlDir, $LogDir, glob("$ServRoot/*_temp"),
                glob("$ServRoot/*_cache"));
    make_path($ServRoot, $LogDir, $HtmlDir, $ConfDir);

    open my $out, '>', "$HtmlDir/index.html" or die "$HtmlDir: $!";
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

sub write_user_files {
    my ($block, $name, $ports) = @_;
    my $files = $block->user_files;
    return unless defined $files;

    my @files;
    if (ref $files eq 'ARRAY') {
        @files = @$files;
    } else {
        my ($fname, $body, $date);
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @files, [$fname, $body, $date] if defined $fname;
                ($fname, $body, $date) = ($1, '', $2);
            } else {
                $body .= $line;
            }
        }
        push @files, [$fname, $body, $date] if defined $fname;
    }

    for my $f (@files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        (my $dir = $path) =~ s{/[^/]*$}{};
        make_path($dir);
        open my $out, '>', $path or bail_out("$name - cannot write $path: $!");
        binmode $out;
        print $out expand_env($body // '', $name, $ports);
        close $out;
        if ($date) {
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - touch $path failed");
        }
    }
}

sub write_config {
    my ($block, $name, $ports) = @_;

    my $config = expand_env($block->config // '', $name, $ports);
    my $http_config = expand_env($block->http_config // '', $name, $ports);
    my $main_config = $block->main_config // '';
    my $log_level = $block->log_level // $LogLevel;

    if ($LoadModules) {
        $main_config .= join ' ', map { "load_module $_;" }
                                  grep { length } split /\s+/, $LoadModules;
    }
    $main_config = expand_env($main_config, $name, $ports);

    my $env = join '', map { "env $_;\n" } @EnvToNginx;
    my $root = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $user = $> == 0 ? "user root;\n" : '';
    my $daemon = $UseValgrind ? 'off' : 'on';

    open my $out, '>', $ConfFile or bail_out("cannot write $ConfFile: $!");
    print $out <<"_EOC_";
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcess;
error_log $ErrLogFile $log_level;
pid       $PidFile;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
$env
$main_config

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

$http_config

    server {
        listen          $ServerPort;
        server_name     '$ServerName';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root    }
}

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
env ASAN_OPTIONS;
$user
_EOC_
    close $out;
}

sub read_pid {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return undef unless defined $pid && $pid =~ /^(\d+)/;
    return $1;
}

# A daemonized nginx is not our child: once it exits it stays a zombie until
# init reaps it, which can take seconds, so a zombie counts as stopped.
sub is_running {
    my $pid = shift;
    return 0 unless $pid && kill(0, $pid);
    open my $in, '<', "/proc/$pid/stat" or return 1;
    my $stat = <$in> // '';
    close $in;
    return $stat !~ /^\d+ \(.*\) [ZX] /;
}

our $NginxChild;

sub stop_nginx {
    my $pid = read_pid() // $NginxChild;
    return unless is_running($pid);

    kill SIGQUIT, $pid;
    # valgrind checks for leaks at exit, which takes a while
    my $left = $UseValgrind ? $Timeout + 60 : $Timeout;
    while ($left > 0 && is_running($pid)) {
        waitpid($pid, WNOHANG);
        sleep 0.02;
        $left -= 0.02;
    }

    if (is_running($pid)) {
        Test::More::diag("nginx $pid did not stop on QUIT; killing it");
        kill SIGKILL, $pid;
        sleep 0.1;
    }

    waitpid($NginxChild, 0) if $NginxChild;
    undef $NginxChild;
    unlink $PidFile;
}

sub valgrind_cmd {
    my $opts = $UseValgrind =~ /^\d+$/
        ? '--tool=memcheck --leak-check=full --show-possibly-lost=no '
          . '--num-callers=100 --gen-suppressions=all'
        : $UseValgrind;
    $opts .= " --suppressions=$_" for grep { -f } 'valgrind.suppress',
                                                  't/valgrind.suppress';
    return "valgrind -q $opts --log-file=$LogDir/valgrind.%p";
}

# under valgrind nginx stays in the foreground as our child, and is ready
# once it answers on the port
sub start_nginx_valgrind {
    my $cmd = valgrind_cmd() . " $NginxBinary -p $ServRoot/ -c $ConfFile";

    $NginxChild = fork() // bail_out("fork: $!");
    if ($NginxChild == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', "$LogDir/valgrind.stderr";
        exec 'sh', '-c', "exec $cmd" or POSIX::_exit(127);
    }

    for (1 .. 600) {
        my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                         PeerPort => $ServerPort,
                                         Proto => 'tcp');
        return 0 if $sock;
        if (waitpid($NginxChild, WNOHANG) == $NginxChild) {
            undef $NginxChild;
            return $? || 1;
        }
        sleep 0.1;
    }

    return 1;
}

# memcheck's reports in dir's valgrind.PID files that are problems: every
# error, and the definite leaks whose stack passes through our code (nginx
# leaves its cycle's memory to the exiting process)
sub valgrind_problems {
    my ($dir) = @_;
    my @bad;

    for my $file (glob "$dir/valgrind.[0-9]*") {
        open my $in, '<', $file or next;
        my $text = do { local $/; <$in> } // '';
        close $in;
        $text =~ s/^==\d+== ?//mg;

        for my $rec (split /\n\s*\n/, $text) {
            next unless $rec =~ /^\s+(?:at|by) 0x/m;
            next if $rec =~ /(?:indirectly|possibly) lost|still reachable/;
            next if $rec =~ /definitely lost/
                    && $rec !~ /ngx_http_pred_|\bpred_\w+ \(/;
            push @bad, "$file:\n$rec";
        }
    }

    return @bad;
}

sub check_valgrind {
    my ($name) = @_;
    my @bad = valgrind_problems($LogDir);

    Test::More::ok(!@bad, "$name - no valgrind errors")
        or Test::More::diag(join "\n", @bad);
}

sub start_nginx {
    my ($name) = @_;
    return start_nginx_valgrind() if $UseValgrind;

    my $cmd = "$NginxBinary -p $ServRoot/ -c $ConfFile > /dev/null";
    my $status;

    for my $try (1 .. 20) {
        system($cmd);
        $status = $?;
        return 0 if $status == 0;
        # a port still held by the previous instance frees up quickly
        last unless slurp_log() =~ /Address already in use/;
        sleep 0.1 * $try;
    }

    return $status;
}

sub slurp_log {
    open my $in, '<', $ErrLogFile or return '';
    local $/;
    my $data = <$in>;
    close $in;
    return $data // '';
}

sub error_log_lines {
    sleep $Sleep * 3;
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogPos, 0;
    my @lines = <$in>;
    $ErrLogPos = tell $in;
    close $in;
    return \@lines;
}

sub value_contains {
    my ($val, $pat) = @_;
    return 0 unless defined $val;
    return index("$val", $pat) >= 0 unless ref $val eq 'ARRAY';
    for my $v (@$val) {
        return 1 if value_contains($v, $pat);
    }
    return 0;
}

sub pattern_list {
    my $pats = shift;
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats eq 'ARRAY';
    chomp $pats;
    return [split /\n+/, $pats];
}

sub line_matches {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

sub check_error_log {
    my ($block, $name, $idx) = @_;
    my $lines;

    if (defined $block->error_log) {
        $lines //= error_log_lines();
        for my $pat (@{ pattern_list($block->error_log) }) {
            my $hit = grep { line_matches($_, $pat) } @$lines;
            Test::More::ok($hit, "$name - pattern \"$pat\" matches a line "
                                 . "in error.log (req $idx)");
        }
    }

    if (defined $block->no_error_log) {
        $lines //= error_log_lines();
        for my $pat (@{ pattern_list($block->no_error_log) }) {
            my ($hit) = grep { line_matches($_, $pat) } @$lines;
            Test::More::ok(!$hit, "$name - pattern \"$pat\" does not match "
                                  . "a line in error.log (req $idx)")
                or Test::More::diag("matched: $hit");
        }
    }
}

# the whole log of the block, after nginx stopped: shutdown alerts such as
# "open socket left in connection" only show up then
sub check_alerts {
    my ($block, $name) = @_;
    my $expected = $block->error_log;

    my @bad;
    for my $line (split /\n/, slurp_log()) {
        for my $level ('[alert]', '[emerg]') {
            next unless index($line, $level) >= 0;
            next if value_contains($expected, substr($level, 0, -1));
            push @bad, $line;
        }
    }

    Test::More::ok(!@bad, "$name - no unexpected [alert] or [emerg] in "
                          . "error.log")
        or Test::More::diag(join "\n", @bad);
}

sub build_request {
    my ($name, $req, $more) = @_;

    1 while $req =~ s/^\s*#[^\n]+\s+|^\s+//s;
    my ($first, $content) = split /\n/, $req, 2;
    my ($meth, $url, $ver) = split ' ', $first;
    defined $meth or bail_out("$name - request line should be non-empty");
    $url //= '/';
    $ver //= 'HTTP/1.1';

    my $headers = '';
    for my $h (split /\n+/, $more // '') {
        next if $h =~ /^\s*#/;
        my ($k, $v) = split /:\s*/, $h, 2;
        $headers .= "$k: " . ($v // '') . "\r\n";
    }

    $content //= '';
    my $len = '';
    if ($content ne '' && $headers !~ /(?:^|\n)Content-Length:/i) {
        $content =~ s/^\s+|\s+$//gs;
        $len = 'Content-Length: ' . length($content) . "\r\n";
    }

    my $std = '';
    $std .= "Host: $ServerName\r\n" if $headers !~ /(?:^|\n)Host:/i;
    $std .= "Connection: close\r\n" if $headers !~ /(?:^|\n)Connection/i;

    return ("$meth $url $ver\r\n$std$headers$len\r\n$content", $meth);
}

sub send_request {
    my ($raw, $timeout) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                     PeerPort => $ServerPortForClient,
                                     Proto => 'tcp', Timeout => $timeout)
        or return (undef, "cannot connect: $!");

    my $deadline = time + $timeout;
    my $sel = IO::Select->new($sock);
    my $off = 0;

    while ($off < length $raw) {
        my $left = $deadline - time;
        return (undef, "timed out writing the request")
            if $left <= 0 || !$sel->can_write($left);
        my $n = syswrite($sock, $raw, length($raw) - $off, $off);
        return (undef, "write failed: $!") unless defined $n;
        $off += $n;
    }

    my $resp = '';
    while (1) {
        my $left = $deadline - time;
        return ($resp, "timed out reading the response")
            if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($sock, my $buf, 65536);
        return ($resp, "read failed: $!") unless defined $n;
        last if $n == 0;
        $resp .= $buf;
    }

    close $sock;
    return ($resp, undef);
}

sub parse_response {
    my ($raw, $meth) = @_;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return undef unless defined $head && $head =~ s{^HTTP/\d\.\d (\d+)[^\r]*}{};
    my %res = (code => $1, headers => {}, raw_headers => $head);

    for my $line (split /\r\n/, $head) {
        next unless $line =~ /^([^:]+):\s*(.*)$/;
        my $k = lc $1;
        $res{headers}{$k} = defined $res{headers}{$k}
                            ? "$res{headers}{$k}, $2" : $2;
    }

    $body //= '';
    $body = '' if $meth eq 'HEAD';

    if (($res{headers}{'transfer-encoding'} // '') =~ /chunked/i) {
        my $decoded = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r]*\r\n//) {
            my $size = hex $1;
            last if $size == 0;
            $decoded .= substr($body, 0, $size, '');
            $body =~ s/^\r\n//;
        }
        $body = $decoded;
    }

    $res{body} = $body;
    return \%res;
}

sub indexed {
    my ($name, $val, $i, $need_array) = @_;
    return $val unless ref $val eq 'ARRAY';
    return $val->[$i] if $need_array || $i == 0;
    bail_out("$name - expected values must be arrays for many requests");
}

sub is_body {
    my ($got, $expected, $desc) = @_;

    return Test::More::like($got, $expected, $desc)
        if ref $expected eq 'Regexp';

    return Test::More::pass($desc) if defined $got && $got eq $expected;

    Test::More::fail($desc);
    if (eval { require Text::Diff; 1 }) {
        Test::More::diag(Text::Diff::diff(\$expected, \($got // ''),
                                          { STYLE => 'Unified' }));
    } else {
        Test::More::diag("     got: '" . ($got // 'undef') . "'\n"
                         . "expected: '$expected'");
    }
    return 0;
}

sub check_response {
    my ($block, $name, $res, $i, $need_array) = @_;

    my $code = defined $block->error_code
               ? indexed($name, $block->error_code, $i, $need_array) : 200;
    Test::More::is($res ? $res->{code} : '', $code, "$name - status code ok");

    if (defined $block->response_headers) {
        my $spec = indexed($name, $block->response_headers, $i, $need_array);
        for my $line (split /\n/, $spec) {
            $line =~ s/^\s+|\s+$//g;
            next if $line eq '';
            if ($line =~ s/^!\s*//) {
                Test::More::ok(!exists $res->{headers}{lc $line},
                               "$name - header $line not present");
                next;
            }
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            Test::More::is($res->{headers}{lc $k} // '', $v // '',
                           "$name - header $k ok");
        }
    }

    elsif (defined $block->response_headers_like) {
        my $spec = indexed($name, $block->response_headers_like, $i,
                           $need_array);
        for my $line (split /\n/, $spec) {
            $line =~ s/^\s+|\s+$//g;
            next if $line eq '';
            my ($k, $v) = split /\s*:\s*/, $line, 2;
            Test::More::like($res->{headers}{lc $k} // '', qr/^$v$/,
                             "$name - header $k like ok");
        }
    }

    if (defined $block->response_body) {
        my $exp = indexed($name, $block->response_body, $i, $need_array);
        is_body($res->{body}, $exp, "$name - response_body - response is "
                                    . "expected");
    }

    if (defined $block->response_body_like) {
        my $pat = indexed($name, $block->response_body_like, $i,
                          $need_array);
        Test::More::like($res->{body}, ref $pat ? $pat : qr/$pat/s,
                         "$name - response_body_like - response is "
                         . "expected");
    }
}

sub run_block {
    my ($block) = @_;
    my $name = "$0 " . $block->name;
    my %ports;

    return unless check_sections($block, $name);

    stop_nginx();
    setup_server_root();
    write_user_files($block, $name, \%ports);
    write_config($block, $name, \%ports);
    $ErrLogPos = 0;

    my $status = start_nginx($name);

    if (defined $block->must_die) {
        Test::More::isnt($status, 0, "$name - die as expected");
        check_error_log($block, $name, 0);
        stop_nginx() if $status == 0;
        return;
    }

    if ($status != 0) {
        Test::More::fail("$name - cannot start nginx (status $status)");
        Test::More::diag(slurp_log());
        return;
    }

    sleep $Sleep;
    my $pid = read_pid();

    my $reqs = $block->request // $block->request_eval;
    if (!defined $reqs) {
        Test::More::fail("$name - no --- request section");
        stop_nginx();
        return;
    }

    my @reqs = ref $reqs eq 'ARRAY' ? @$reqs : ($reqs);
    my $need_array = @reqs > 1;
    my $timeout = parse_time($block->timeout) // $Timeout;

    # like the real runner, the error log is checked after every request,
    # each time against what was logged since the previous check
    for my $rep (0 .. $RepeatEach - 1) {
        for my $i (0 .. $#reqs) {
            my $more = indexed($name, $block->more_headers, $i, $need_array);
            my ($raw, $meth) = build_request($name, $reqs[$i], $more);
            my ($resp, $err) = send_request($raw, $timeout);
            Test::More::fail("$name - $err") if $err;
            check_response($block, $name, parse_response($resp // '', $meth),
                           $i, $need_array);

            sleep parse_time($block->wait) if $block->wait;
            check_error_log($block, $name, $rep);
        }
    }

    Test::More::ok(is_running($pid), "$name - nginx is still running")
        or Test::More::diag(slurp_log());

    stop_nginx();
    check_alerts($block, $name);
    check_valgrind($name) if $UseValgrind;
}

1;
