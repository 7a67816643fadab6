"""One module of checks per lesson: ``lessonNN.py`` registers the questions ``"NN.*"``."""
