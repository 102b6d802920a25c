create database airflow;
create database pae;
create database mlflow;
