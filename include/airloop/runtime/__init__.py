"""Running airloop's servers: Airflow's components, the serving API and the MLflow UI as
supervised processes, and Airflow's CLI and REST API as a client sees them.

Not orchestration: nothing here runs inside a task or imports Airflow. The CLI, the demo and
the tests drive Airflow through these, as a user's own tooling would.
"""
