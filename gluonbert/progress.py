"""Progress bars and loss plots for long loops."""
import contextlib

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(total, desc):
    """A tqdm bar that refreshes at most twice a second (quiet enough for CI logs)."""
    bar = tqdm(total=total, desc=desc, mininterval=0.5, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


class LossPlot:
    """Collects (x, values...) points and saves them as a PNG line plot."""

    def __init__(self, legend):
        self.legend = tuple(legend)
        self.points = []

    def add(self, x, *values):
        self.points.append((x, *values))

    def save(self, path, xlabel, fmt=None):
        """Write the plot to ``path`` (PNG unless ``fmt`` says otherwise); NaN values are
        gaps: a series is drawn through its own points only."""
        import math

        import matplotlib
        matplotlib.use('Agg')
        from matplotlib import pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for i, name in enumerate(self.legend):
            points = [(p[0], p[i + 1]) for p in self.points if not math.isnan(p[i + 1])]
            ax.plot([x for x, _ in points], [y for _, y in points], label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('loss')
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100, format=fmt)
        plt.close(fig)
