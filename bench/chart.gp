# The suite's charts, from bench/report.py's data files (chart-1.dat, chart-2.dat, latency.dat):
#   gnuplot -e "dir='WORK'; out='docs/benchmarks-suite.png'; latency='docs/benchmarks-latency.png'" bench/chart.gp
# Throughput: per scenario, the peer doing the same job beside Portcullis, the
# ratio printed above; one proxy thread and two threads in separate panels.
# Latency: p50 and p99 at fixed rates, Portcullis beside HAProxy.
set terminal pngcairo size 1500,1000 font ",11" noenhanced
set output out
set style data histogram
set style histogram clustered gap 1.5
set style fill solid 0.9 border -1
set grid ytics
set key top right
set xtics scale 0 font ",10"
set ylabel "requests per second (median of the rounds)"
peer = "#9a9a9a"; ours = "#2f6db5"
# "scenario / peer" on two lines under its pair.
split(label) = (strstrt(label, " / ") > 0) ? label[1:strstrt(label, " / ") - 1] . "\nvs " . label[strstrt(label, " / ") + 3:] : label
# The panel's top: the highest bar (the two figures before the ratio), and room for the ratio.
top(file) = real(system(sprintf("awk '{for (i = NF - 2; i < NF; i++) if ($i + 0 > m) m = $i + 0} END {print m + 0}' %s", file))) * 1.18
set multiplot layout 2,1 title "Portcullis beside the peer doing the same job: req/s, the ratio above each pair (Portcullis / peer)"
set bmargin 5
set title "one proxy thread, pinned to core 0 (wrk and the nginx upstream on core 1)"
set yrange [0:top(dir."/chart-1.dat")]
plot dir."/chart-1.dat" using 2:xtic(split(strcol(1))) title "peer (HAProxy or nginx, as named)" lc rgb peer, \
     '' using 3 title "Portcullis" lc rgb ours, \
     '' using 0:($2 > $3 ? $2 : $3):(sprintf("%.2f×", $4)) with labels offset 0,1 font ",11" notitle
set title "two proxy threads, sharing both cores with wrk and the upstream"
set yrange [0:top(dir."/chart-2.dat")]
plot dir."/chart-2.dat" using 2:xtic(split(strcol(1))) title "peer (HAProxy or nginx, as named)" lc rgb peer, \
     '' using 3 title "Portcullis" lc rgb ours, \
     '' using 0:($2 > $3 ? $2 : $3):(sprintf("%.2f×", $4)) with labels offset 0,1 font ",11" notitle
unset multiplot

set output latency
set key top left
set terminal pngcairo size 1200,600 font ",11" noenhanced
set title "Latency at a fixed rate (oha, corrected for coordinated omission; one proxy thread): lower is better"
set ylabel "µs"
unset yrange
set yrange [0:*]
set bmargin 3
plot dir."/latency.dat" using 2:xtic(1) title "HAProxy p50" lc rgb "#c8c8c8", \
     '' using 3 title "HAProxy p99" lc rgb peer, \
     '' using 4 title "Portcullis p50" lc rgb "#8fb3e0", \
     '' using 5 title "Portcullis p99" lc rgb ours
