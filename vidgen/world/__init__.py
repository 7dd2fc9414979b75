"""The built-in world: scenes with known truth, rendered to video (`scenes`), the probe that reads
that truth back from any video (`probe`), the scores built on it (`metrics`), and the feature
net of its Fréchet video distance (`features`, trained by `train_features`).

Everything that knows the world's truth lives here: the data pipeline sees the world as one
more source of videos and captions, and training reads its truth only through the probe
evaluator (`eval.evaluators`).
"""
