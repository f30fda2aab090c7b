module slabpool/bench/go

go 1.19
