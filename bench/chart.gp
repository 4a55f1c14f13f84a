# Throughput per scenario (median, with min-max), from bench/report.py's data file.
set terminal pngcairo size 1400,700 font ",10" noenhanced
set rmargin 14
set output out
set title "Requests per second (median, min-max): one proxy thread on one core unless the name says 2 threads"
set style data histogram
set style fill solid 0.8 border -1
set boxwidth 0.7
set xtics rotate by -30 left
set ylabel "req/s"
set grid ytics
set yrange [0:*]
plot data using 2:xtic(1) notitle lc rgb "#4a7ab5", \
     '' using 0:2:3:4 with yerrorbars notitle lc rgb "black" pt 0
