"""Model classes: long-format forecasters and scikit-learn style churn classifiers."""
