# bench/round2.gp - the plots of issue 20's "How cost grows", from the data
# bench/round2.sh leaves in its output folder:
#   gnuplot -e "dir='OUT_DIR'; out='docs/images'" bench/round2.gp
# conns.dat, put.dat, chat.dat, idle.dat, and refs.gp (the reference lines).
load dir.'/refs.gp'
set terminal pngcairo size 1100,460 font 'sans,10' background rgb 'white'
set grid
set key top left

set output out.'/round2-conns.png'
set multiplot layout 1,2 title 'Echo, 64 B, 1 request in flight per connection (loadgen)'
set logscale x
set xlabel 'connections'
set ylabel 'requests/s'
set yrange [0:*]
set format y '%.1s%c'
plot dir.'/conns.dat' u 1:2 w lp lw 2 t 'sockit serve (auth)', \
     '' u 1:4 w lp lw 2 dt 2 t 'epoll\_echo'
set yrange [*:*]
set logscale y
set ylabel 'p99 latency (us)'
set format y '%g'
plot dir.'/conns.dat' u 1:3 w lp lw 2 t 'sockit serve (auth)', \
     '' u 1:5 w lp lw 2 dt 2 t 'epoll\_echo'
unset multiplot
unset logscale

set output out.'/round2-put.png'
set title 'put from /dev/shm: time against file size'
set logscale xy
set xlabel 'file size (MiB)'
set ylabel 'seconds'
set format y '%g'
mb(x) = x * 1.048576
plot dir.'/put.dat' u 1:2 w lp lw 2 t 'sockit put, fastest hash', \
     '' u 1:3 w lp lw 2 t 'sockit put, sha256', \
     '' u 1:4 w lp lw 2 t 'sockit put, TLS', \
     '' u 1:5 w lp lw 2 dt 2 t 'epoll\_echo put (no hash)', \
     (iperf3 == iperf3 ? mb(x) / iperf3 : 1/0) w l dt 3 lw 2 t 'iperf3, 1 stream (loopback)', \
     mb(x) / openssl_sha256 w l dt 4 lw 2 t 'openssl speed sha256, 1 core'
unset logscale

set output out.'/round2-chat.png'
unset title
set multiplot layout 1,3 title 'Chat: one room, 1 sender, 64 B, window of 16 (sockit bench --mode chat)'
set logscale x
set xlabel 'members in the room'
set ylabel 'deliveries/s'
set yrange [0:*]
set format y '%.1s%c'
plot dir.'/chat.dat' u 1:2 w lp lw 2 t 'sockit deliveries/s', \
     epoll_c50p16 w l dt 2 lw 2 t 'epoll\_echo responses/s, c50 p16'
set yrange [*:*]
set logscale y
set ylabel 'say-to-delivery latency (us)'
set format y '%g'
plot dir.'/chat.dat' u 1:4 w lp lw 2 t 'sockit p99', '' u 1:3 w lp lw 2 dt 2 t 'sockit p50'
set ylabel 'seconds to form the room (connect, auth, join)'
plot dir.'/chat.dat' u 1:5 w lp lw 2 t 'sockit', \
     (x / 1000.0) ** 2 w l dt 3 t 'N^2 (1 s at 1,000)'
unset multiplot
unset logscale

set output out.'/round2-idle.png'
set title 'Server memory against idle authenticated connections (each answers a ping)'
set xlabel 'idle connections'
set ylabel 'server RSS growth (MiB)'
set format y '%g'
plot dir.'/idle.dat' u 1:3 w lp lw 2 t 'sockit, TLS', \
     '' u 1:2 w lp lw 2 t 'sockit, plain', \
     '' u 1:4 w lp lw 2 dt 2 t 'epoll\_echo (no auth)'
