"""One subpackage per task (classification, detection, regression): its data, models, training,
scores, repository builder and evaluation, on top of ``core``, ``training`` and ``build``."""
