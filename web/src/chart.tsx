import { BarChart } from 'echarts/charts';
import { GridComponent, TooltipComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import ReactEChartsCore from 'echarts-for-react/lib/core';
import type { CSSProperties } from 'react';

// Only what the portal draws (bar charts with axes and tooltips): a fraction of full ECharts.
echarts.use([BarChart, GridComponent, TooltipComponent, CanvasRenderer]);

export function Chart({ option, style }: { option: Record<string, unknown>; style?: CSSProperties }) {
  return <ReactEChartsCore echarts={echarts} option={option} style={style} notMerge />;
}
