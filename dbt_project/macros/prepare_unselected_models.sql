{#
  Run at the start of every invocation (on-run-start). A build that selects only some models (a subset
  of the assets, a retry) reads the others' current content, never another window's or a failed build:
  - each mart it does not build gets the published rows of the window as its audit table, so its tests
    and the marts built from it read what readers see;
  - on the lake, where a build's models live in dbt's own memory (generate_database_name.sql), each view
    it does not build reads the one last published to the lake (publish_marts.sql).
  A build of every model (what Dagster runs) selects everything: nothing to do, nothing queried.
#}
{% macro prepare_unselected_models() %}
  {%- if execute -%}
    {%- set unselected = [] -%}
    {%- for node in graph.nodes.values() -%}
      {%- if node.resource_type == 'model' and node.unique_id not in selected_resources
            and ((node.fqn[1] == 'marts' and node.config.materialized == 'table')
                 or (node.config.materialized == 'view' and node.database != target.database)) -%}
        {%- do unselected.append(node) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if unselected -%}
      {%- set published = run_query("select schema_name || '.' || table_name from duckdb_tables() where database_name = '" ~ target.database ~ "' union all select schema_name || '.' || view_name from duckdb_views() where database_name = '" ~ target.database ~ "'").columns[0].values() -%}
      {%- for node in unselected if (node.schema ~ '.' ~ node.name) in published %}
        create schema if not exists {{ node.database }}.{{ node.schema }};
        {%- if node.config.materialized == 'table' %}
        create or replace table {{ node.database }}.{{ node.schema }}.{{ node.alias }} as
          select * from {{ target.database }}.{{ node.schema }}.{{ node.name }}
          where {{ in_partition_window(node.config.get('partition_column', 'flight_date')) }};
        {%- else %}
        create or replace view {{ node.database }}.{{ node.schema }}.{{ node.alias }} as
          select * from {{ target.database }}.{{ node.schema }}.{{ node.name }};
        {%- endif %}
      {%- endfor %}
    {%- endif -%}
  {%- endif -%}
{% endmacro %}
