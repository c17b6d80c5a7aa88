"""Names both sides of a study share: the planner and runner that write cells and their records, and the report that
reads them. The splits each cell is scored on, the kinds of cell, and where the records are."""

EVAL_SPLIT = "validation"  # unseen: articles no training question came from
SEEN_SPLIT = "validation_seen"  # other questions about the training articles
TRAIN_SAMPLE_SPLIT = "train"  # the cell's own training questions: does it fit them
NEW_SPLIT, NEW_TRAIN_SPLIT = "test", "test_train"  # the late articles, and their training questions
CELLS_DIR = "cells"  # under the study directory: one run directory and one JSON record per cell
KNOWLEDGE, MAIN, FRESH_INDEX = "knowledge", "main", "fresh_index"
FRESH_TRAINING = {"text": "fresh_text", "qa": "fresh_qa"}
