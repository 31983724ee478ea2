"""Player: play, pause, step forward and back, reset, a scrub slider and a speed control
over the steps of a trace.

`position` counts the steps done: 0 shows nothing computed yet, N shows the last step.
"""
from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSlider, QStyle,
                               QWidget)
from PySide6.QtCore import Qt


class Player(QWidget):
    """Transport controls. Emits sigPositionChanged(position) whenever the step changes."""

    sigPositionChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._count = 0
        self._position = 0
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        style = self.style()

        def button(icon: QStyle.StandardPixmap, tip: str, slot) -> QPushButton:
            b = QPushButton(style.standardIcon(icon), "")
            b.setToolTip(tip)
            b.clicked.connect(slot)
            return b

        self.reset_button = button(QStyle.StandardPixmap.SP_MediaSkipBackward, "Reset to the start", self.reset)
        self.back_button = button(QStyle.StandardPixmap.SP_MediaSeekBackward, "Step back", self.step_back)
        self.play_button = button(QStyle.StandardPixmap.SP_MediaPlay, "Play / pause", self.toggle)
        self.forward_button = button(QStyle.StandardPixmap.SP_MediaSeekForward, "Step forward", self.step_forward)
        self.end_button = button(QStyle.StandardPixmap.SP_MediaSkipForward, "Jump to the last step", self.to_end)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setToolTip("Scrub through the steps")
        self.slider.valueChanged.connect(self.set_position)
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.25, 60.0)
        self.speed.setValue(2.0)
        self.speed.setSingleStep(0.5)
        self.speed.setSuffix(" steps/s")
        self.speed.setToolTip("Playback speed")
        self.speed.valueChanged.connect(self._apply_speed)
        self.label = QLabel()
        self.label.setMinimumWidth(90)

        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.reset_button, self.back_button, self.play_button, self.forward_button, self.end_button):
            row.addWidget(w)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        row.addWidget(self.speed)
        self._apply_speed()
        self._refresh()

    # ------------------------------------------------------------ state
    @property
    def count(self) -> int:
        return self._count

    @property
    def position(self) -> int:
        return self._position

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_count(self, count: int) -> None:
        """A new trace: keep the position if it still exists, else clamp it."""
        self._count = max(0, count)
        self.slider.blockSignals(True)
        self.slider.setRange(0, self._count)
        self.slider.blockSignals(False)
        if self._count == 0:
            self.pause()
        self.set_position(min(self._position, self._count), force=True)

    def set_position(self, position: int, force: bool = False) -> None:
        position = max(0, min(int(position), self._count))
        if position == self._position and not force:
            return
        self._position = position
        self._refresh()
        self.sigPositionChanged.emit(position)

    # ------------------------------------------------------------ actions
    def step_forward(self) -> None:
        self.set_position(self._position + 1)

    def step_back(self) -> None:
        self.set_position(self._position - 1)

    def reset(self) -> None:
        self.pause()
        self.set_position(0)

    def to_end(self) -> None:
        self.pause()
        self.set_position(self._count)

    def play(self) -> None:
        if self._count == 0:
            return
        if self._position >= self._count:
            self.set_position(0)
        self._timer.start()
        self._refresh()

    def pause(self) -> None:
        self._timer.stop()
        self._refresh()

    def toggle(self) -> None:
        self.pause() if self.is_playing() else self.play()

    def _tick(self) -> None:
        if self._position >= self._count:
            self.pause()
        else:
            self.step_forward()

    def _apply_speed(self) -> None:
        self._timer.setInterval(max(15, int(1000 / self.speed.value())))

    def _refresh(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(self._position)
        self.slider.blockSignals(False)
        self.label.setText(f"step {self._position} / {self._count}")
        icon = QStyle.StandardPixmap.SP_MediaPause if self.is_playing() else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.back_button.setEnabled(self._position > 0)
        self.forward_button.setEnabled(self._position < self._count)
