{#
  dbt's documented hook for templating a test's `where` config (the config itself is rendered at parse
  time, where no macro and no per-run window is known). A test whose `where` contains __partition_window__
  reads only the run's partition window of the model it tests, on that model's `partition_column`
  (default flight_date): a daily run's tests cost O(window), not O(history). Without a window (a full
  build) the predicate is true and the test reads every row.
#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- if where and '__partition_window__' in where -%}
    {%- set column = 'flight_date' -%}
    {%- if execute and model.attached_node in graph.nodes -%}
      {%- set column = graph.nodes[model.attached_node].config.get('partition_column', 'flight_date') -%}
    {%- endif -%}
    {%- set where = where | replace('__partition_window__', '(' ~ in_partition_window(column) ~ ')') -%}
  {%- endif -%}
  {%- if where -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
