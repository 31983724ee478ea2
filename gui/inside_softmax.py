"""SoftmaxPanel: the probe image's logits turned into probabilities and its
cross-entropy loss, every number written out (`explain.softmax_cross_entropy`)."""
from __future__ import annotations

from html import escape
from typing import Sequence

import numpy as np
from PySide6.QtWidgets import QTextBrowser, QWidget

from cnnlab.explain import format_number as num, softmax_cross_entropy

from .inside_neuron import NO_RUN


class SoftmaxPanel(QTextBrowser):
    """`show_logits(logits, classes, label)`: softmax and cross-entropy written out."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace = None
        self.setHtml(f"<p>{escape(NO_RUN)}</p>")

    def show_logits(self, logits: np.ndarray, classes: Sequence[str], label: int | None, when: str = "") -> None:
        if not np.isfinite(logits).all():
            self.trace = None
            self.setHtml(f"<p>The probe's logits {escape(when)} are not all finite numbers (the run diverged): "
                         "there is no softmax to write out.</p>")
            return
        target = int(np.argmax(logits)) if label is None else int(label)
        t = self.trace = softmax_cross_entropy(logits, target)
        names = list(classes) if len(classes) == len(t.logits) else [str(k) for k in range(len(t.logits))]
        names = [str(n) if str(n) == str(k) else f"{k} {n}" for k, n in enumerate(names)]
        rows = []
        for k, (z, e, p) in enumerate(zip(t.logits, t.exps, t.probabilities)):
            style = " style='background:#f6d8ff; font-weight:bold'" if k == target else ""
            rows.append(f"<tr{style}><td>{escape(names[k])}</td><td>{num(z)}</td><td>{num(z - t.shift)}</td>"
                        f"<td>{num(e)}</td><td>{num(p)}</td></tr>")
        rows.append(f"<tr><td colspan='3' align='right'>sum of the exponentials</td><td><b>{num(t.total)}</b></td>"
                    f"<td>{num(sum(t.probabilities))}</td></tr>")
        whose = (f"its label, class {escape(names[target])}" if label is not None else
                 f"no label (a file): the predicted class {escape(names[target])} stands in")
        self.setHtml(
            f"<p><b>The probe image</b> {escape(when)} · target: {whose}</p>"
            "<table border='1' cellspacing='0' cellpadding='3'><tr><th>class</th><th>logit z</th>"
            f"<th>z − max ({num(t.shift)})</th><th>exp(z − max)</th><th>p = exp / sum</th></tr>"
            + "".join(rows) + "</table>"
            "<p>Subtracting the largest logit changes no probability (it cancels in exp / sum) and keeps exp "
            "from overflowing.</p>"
            f"<p style='font-size:large'>loss = −log p[{target}] = −log {num(t.probabilities[target])} = "
            f"<b>{num(t.loss)}</b></p>")
