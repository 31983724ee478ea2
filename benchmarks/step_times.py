"""Training-step times (SGD momentum, batch 64) of three zoo nets, median of N steps.

A before/after check of the engine: run it once with this tree and once with an older
tree put first on PYTHONPATH (`git archive REV | tar -x -C /tmp/before`), alternating:

    .venv/bin/python benchmarks/step_times.py 100
    PYTHONPATH=/tmp/before .venv/bin/python benchmarks/step_times.py 100
"""
import sys, time
import cnnlab
import numpy as np
from cnnlab import models, nn, optim
cnnlab.manual_seed(0)
rows = [("convnet", dict(), (64, 1, 28, 28)), ("simplecnn", dict(), (64, 3, 32, 32)), ("modern", dict(), (64, 1, 28, 28))]
out = {}
for name, kw, shape in rows:
    m = models.create(name, **kw)
    opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = cnnlab.randn(*shape); y = cnnlab.randint(0, 10, (shape[0],))
    lossf = nn.CrossEntropyLoss()
    def step():
        opt.zero_grad(); l = lossf(m(x), y); l.backward(); opt.step(); return l
    for _ in range(5): step()
    ts = []
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 30):
        t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
    out[name] = np.median(ts) * 1e3
print(cnnlab.__file__, " ".join(f"{k} {v:.2f} ms" for k, v in out.items()))
